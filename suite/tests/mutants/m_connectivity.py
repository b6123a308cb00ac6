"""Mutants for the connectivity/* cases: bridge, portmap and bandwidth wrappers that break what a
configuration promises while every result still looks right. They run inside the lab and change
it with ip/bridge/iptables there."""
import json
import os
import subprocess
import sys

from mutantlib import after_add, netns_run, passthrough, real

BRIDGE = "/usr/lib/cni/bridge"
PORTMAP = "/usr/lib/cni/portmap"
BANDWIDTH = "/usr/lib/cni/bandwidth"


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


MUTANTS = {
    "conn-isolated-ports": (isolated_ports, "connectivity/container-to-container", "warn", BRIDGE),
    "conn-drops-ipv6": (drops_ipv6, "connectivity/container-to-container-ipv6", "warn", BRIDGE),
    "conn-drops-ipv6-host": (drops_ipv6, "connectivity/host-to-container-ipv6", "warn", BRIDGE),
    "conn-drops-host-pings": (drops_host_pings, "connectivity/host-to-container", "warn", BRIDGE),
    "conn-ignores-mtu": (ignores_mtu, "connectivity/mtu", "warn", BRIDGE, "bridge-mtu.json"),
    "conn-narrow-host-end": (narrow_host_end, "connectivity/mtu", "warn", BRIDGE, "bridge-mtu.json"),
    "conn-no-masquerade": (no_masquerade, "connectivity/masquerade", "warn", BRIDGE),
    "conn-keeps-masquerade": (keeps_masquerade, "connectivity/masquerade-del", "warn", BRIDGE),
    "conn-wrong-host-port": (wrong_host_port, "connectivity/portmap", "warn", PORTMAP, "portmap.conflist"),
    "conn-portmap-del-noop": (portmap_del_noop, "connectivity/portmap-del", "warn", PORTMAP, "portmap.conflist"),
    "conn-no-shaping": (no_shaping, "connectivity/bandwidth", "warn", BANDWIDTH, "bandwidth.conflist"),
}
