"""Mutants for the connectivity/* cases: bridge, portmap and bandwidth wrappers that break what a container can reach."""

import json
import os
import subprocess
import sys

from mutantlib import Mutant, after_add, netns_run, on_add, passthrough, real, rewrite_add, BANDWIDTH, BRIDGE, PORTMAP


def host_veth(result):
    return [i["name"] for i in result.get("interfaces", []) if not i.get("sandbox") and i["name"].startswith("veth")]


def isolated_ports(cmd, stdin):
    """Bridge ports that may not talk to each other (only to the host)."""
    if cmd == "ADD":
        after_add(stdin, lambda r: [subprocess.run(["bridge", "link", "set", "dev", v, "isolated", "on"])
                                    for v in host_veth(r)])
    passthrough(real(stdin))


def drops_ipv6(cmd, stdin):
    """Reports the IPv6 address but removes it from the container interface."""
    if cmd == "ADD":
        after_add(stdin, lambda r: netns_run(["ip", "-6", "addr", "flush", "dev", os.environ["CNI_IFNAME"],
                                              "scope", "global"]))
    passthrough(real(stdin))


def drops_host_pings(cmd, stdin):
    """The container ignores echo requests (it still sends its own)."""
    if cmd == "ADD":
        after_add(stdin, lambda r: netns_run(["iptables", "-A", "INPUT", "-p", "icmp", "--icmp-type",
                                              "echo-request", "-j", "DROP"]))
    passthrough(real(stdin))


def ignores_mtu(cmd, stdin):
    conf = json.loads(stdin or b"{}")
    conf.pop("mtu", None)
    passthrough(real(json.dumps(conf).encode()))


def narrow_host_end(cmd, stdin):
    """Applies the mtu to the container end only; the host end of the veth stays narrower."""
    if cmd == "ADD":
        after_add(stdin, lambda r: [subprocess.run(["ip", "link", "set", "dev", v, "mtu", "1300"])
                                    for v in host_veth(r)])
    passthrough(real(stdin))


def no_masquerade(cmd, stdin):
    """Sets up ipMasq, then drops every source-NAT jump."""
    if cmd == "ADD":
        after_add(stdin, lambda r: subprocess.run(["iptables", "-t", "nat", "-F", "POSTROUTING"]))
    passthrough(real(stdin))


def keeps_masquerade(cmd, stdin):
    """DEL forgets ipMasq, so the NAT chain of the container stays."""
    if cmd == "DEL":
        conf = json.loads(stdin or b"{}")
        conf["ipMasq"] = False
        stdin = json.dumps(conf).encode()
    passthrough(real(stdin))


def wrong_host_port(cmd, stdin):
    conf = json.loads(stdin or b"{}")
    for m in conf.get("runtimeConfig", {}).get("portMappings", []):
        m["hostPort"] = m["hostPort"] + 1
    passthrough(real(json.dumps(conf).encode()))


def portmap_del_noop(cmd, stdin):
    if cmd == "DEL":
        sys.exit(0)
    passthrough(real(stdin))


def no_shaping(cmd, stdin):
    conf = json.loads(stdin or b"{}")
    for key in ("ingressRate", "ingressBurst", "egressRate", "egressBurst"):
        conf.pop(key, None)
    conf.get("runtimeConfig", {}).pop("bandwidth", None)
    passthrough(real(json.dumps(conf).encode()))


def add_lies_gateway(cmd, stdin):
    if cmd == "ADD":
        def change(r):
            for ip in r.get("ips", []):
                ip["gateway"] = "10.88.0.254"
        rewrite_add(stdin, change)
    passthrough(real(stdin))


def gateway_off_subnet(cmd, stdin):
    """Names a gateway outside the address's subnet."""
    def change(r):
        for ip in r.get("ips", []):
            ip["gateway"] = "10.99.0.1"
    on_add(cmd, stdin, change)


def gateway_is_self(cmd, stdin):
    """Names the container's own address as its gateway: an echo to it is answered locally."""
    def change(r):
        for ip in r.get("ips", []):
            ip["gateway"] = ip["address"].split("/")[0]
    on_add(cmd, stdin, change)


def gateway_is_loopback(cmd, stdin):
    def change(r):
        for ip in r.get("ips", []):
            if ":" not in ip["address"]:
                ip["gateway"] = "127.0.0.1"
    on_add(cmd, stdin, change)


def link_down(cmd, stdin):
    """Leaves the container interface administratively down after ADD."""
    p = real(stdin)
    if cmd == "ADD" and p.returncode == 0:
        netns_run(["ip", "link", "set", "dev", os.environ.get("CNI_IFNAME", ""), "down"])
    passthrough(p)


def host_end_unbridged(cmd, stdin):
    """Never attaches the host end of the veth to the bridge."""
    p = real(stdin)
    if cmd == "ADD" and p.returncode == 0:
        for i in json.loads(p.stdout).get("interfaces", []):
            if not i.get("sandbox") and i["name"].startswith("veth"):
                subprocess.run(["ip", "link", "set", "dev", i["name"], "nomaster"])
    passthrough(p)


MUTANTS = [
    Mutant(name="conn-isolated-ports", run=isolated_ports, case="connectivity/container-to-container", status="warn", wraps=BRIDGE),
    Mutant(name="conn-drops-ipv6", run=drops_ipv6, case="connectivity/container-to-container-ipv6", status="warn", wraps=BRIDGE),
    Mutant(name="conn-drops-ipv6-host", run=drops_ipv6, case="connectivity/host-to-container-ipv6", status="warn", wraps=BRIDGE),
    Mutant(name="conn-drops-host-pings", run=drops_host_pings, case="connectivity/host-to-container", status="warn", wraps=BRIDGE),
    Mutant(name="conn-ignores-mtu", run=ignores_mtu, case="connectivity/mtu", status="warn", wraps=BRIDGE, config="bridge-mtu.json"),
    Mutant(name="conn-narrow-host-end", run=narrow_host_end, case="connectivity/mtu", status="warn", wraps=BRIDGE, config="bridge-mtu.json"),
    Mutant(name="conn-no-masquerade", run=no_masquerade, case="connectivity/masquerade", status="warn", wraps=BRIDGE),
    Mutant(name="conn-keeps-masquerade", run=keeps_masquerade, case="connectivity/masquerade-del", status="warn", wraps=BRIDGE),
    Mutant(name="conn-wrong-host-port", run=wrong_host_port, case="connectivity/portmap", status="warn", wraps=PORTMAP, config="portmap.conflist"),
    Mutant(name="conn-portmap-del-noop", run=portmap_del_noop, case="connectivity/portmap-del", status="warn", wraps=PORTMAP, config="portmap.conflist"),
    Mutant(name="conn-no-shaping", run=no_shaping, case="connectivity/bandwidth", status="warn", wraps=BANDWIDTH, config="bandwidth.conflist"),
    Mutant(name="add-lies-gateway", run=add_lies_gateway, case="connectivity/container-to-gateway", status="fail"),
    Mutant(name="res-gateway-off-subnet", run=gateway_off_subnet, case="connectivity/container-to-gateway", status="fail"),
    Mutant(name="res-gateway-is-self", run=gateway_is_self, case="connectivity/container-to-gateway", status="fail"),
    Mutant(name="res-gateway-is-loopback", run=gateway_is_loopback, case="connectivity/container-to-gateway", status="fail"),
    Mutant(name="res-link-down", run=link_down, case="connectivity/container-to-gateway", status="fail"),
    Mutant(name="res-host-end-unbridged", run=host_end_unbridged, case="connectivity/container-to-gateway", status="fail"),
]
