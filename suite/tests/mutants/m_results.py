"""Mutants a reviewer tries on results: the ADD result lies subtly about what the plugin made, or
comes back in the wrong place or shape. They wrap upstream bridge (bridge.json) unless noted."""
import ipaddress
import json
import os
import subprocess
import sys

from mutantlib import emit, netns_run, passthrough, real, rewrite_add

HOST_LOCAL = "/usr/lib/cni/host-local"


def sandboxed(result):
    return [i for i in result.get("interfaces", []) if i.get("sandbox")]


def on_add(cmd, stdin, change):
    if cmd == "ADD":
        rewrite_add(stdin, change)
    passthrough(real(stdin))


def wrong_prefix(cmd, stdin):
    """Reports the container address with a /16 although the kernel has it as /24."""
    def change(r):
        for ip in r.get("ips", []):
            ip["address"] = ip["address"].split("/")[0] + "/16"
    on_add(cmd, stdin, change)


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


def index_out_of_range(cmd, stdin):
    def change(r):
        for ip in r.get("ips", []):
            ip["interface"] = len(r.get("interfaces", [])) + 3
    on_add(cmd, stdin, change)


def ips_on_host_veth(cmd, stdin):
    """ips[].interface points at the host end of the veth instead of the container's interface."""
    def change(r):
        host = [n for n, i in enumerate(r.get("interfaces", [])) if not i.get("sandbox") and
                i["name"].startswith("veth")]
        for ip in r.get("ips", []):
            ip["interface"] = host[0]
    on_add(cmd, stdin, change)


def wrong_sandbox(cmd, stdin):
    def change(r):
        for i in sandboxed(r):
            i["sandbox"] = "/var/run/netns/some-other-container"
    on_add(cmd, stdin, change)


def host_veth_sandboxed(cmd, stdin):
    """Gives the host end of the veth the container's sandbox."""
    def change(r):
        for i in r.get("interfaces", []):
            if not i.get("sandbox") and i["name"].startswith("veth"):
                i["sandbox"] = os.environ.get("CNI_NETNS", "")
    on_add(cmd, stdin, change)


def version_family_mismatch(cmd, stdin):
    """At 0.3.x/0.4.0, labels IPv4 addresses as version "6"."""
    def change(r):
        for ip in r.get("ips", []):
            if "version" in ip:
                ip["version"] = "4" if ":" in ip["address"] else "6"
    on_add(cmd, stdin, change)


def mislabels_031(cmd, stdin):
    """Answers 0.3.1 requests with cniVersion 0.3.0 (every other version is right)."""
    def change(r):
        if r.get("cniVersion") == "0.3.1":
            r["cniVersion"] = "0.3.0"
    on_add(cmd, stdin, change)


def result_on_stderr(cmd, stdin):
    p = real(stdin)
    if cmd == "ADD" and p.returncode == 0:
        sys.stderr.buffer.write(p.stdout)
        sys.exit(0)
    passthrough(p)


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


def ipam_with_interfaces(cmd, stdin):
    """An IPAM plugin that invents an interface list and points its addresses at it."""
    def change(r):
        r["interfaces"] = [{"name": os.environ.get("CNI_IFNAME", "eth0")}]
        for ip in r.get("ips", []):
            ip["interface"] = 0
    on_add(cmd, stdin, change)


def ipam_hands_out_gateway(cmd, stdin):
    """Reports the gateway as the container's address when the first host address is allocated."""
    def change(r):
        for ip in r.get("ips", []):
            gw = ip.get("gateway")
            addr = ipaddress.ip_interface(ip["address"])
            if gw and int(addr.ip) == int(ipaddress.ip_address(gw)) + 1:
                ip["address"] = f"{gw}/{addr.network.prefixlen}"
    on_add(cmd, stdin, change)


def mtu_lie(cmd, stdin):
    """Claims an MTU of 9000 on the container interface (1.1.0 results carry interfaces[].mtu)."""
    def change(r):
        for i in sandboxed(r):
            i["mtu"] = 9000
    on_add(cmd, stdin, change)


def dns_garbage(cmd, stdin):
    def change(r):
        r["dns"] = {"nameservers": ["not-an-address"], "search": ["svc.cluster.local"]}
    on_add(cmd, stdin, change)


def old_result_without_ip(cmd, stdin):
    """At 0.1.0/0.2.0, prints a result without its ip4 block."""
    def change(r):
        if r.get("cniVersion") in ("0.1.0", "0.2.0"):
            r.pop("ip4", None)
    on_add(cmd, stdin, change)


MUTANTS = {
    "res-wrong-prefix": (wrong_prefix, "add/result-matches-kernel", "fail"),
    "res-gateway-off-subnet": (gateway_off_subnet, "connectivity/container-to-gateway", "fail"),
    "res-gateway-is-self": (gateway_is_self, "connectivity/container-to-gateway", "fail"),
    "res-gateway-is-loopback": (gateway_is_loopback, "connectivity/container-to-gateway", "fail"),
    "res-index-out-of-range": (index_out_of_range, "add/result-matches-kernel", "fail"),
    "res-ips-on-host-veth": (ips_on_host_veth, "add/result-matches-kernel", "fail"),
    "res-wrong-sandbox": (wrong_sandbox, "add/result-matches-kernel", "fail"),
    "res-host-veth-sandboxed": (host_veth_sandboxed, "add/result-matches-kernel", "fail"),
    "res-version-family-mismatch": (version_family_mismatch, "matrix/add-check-del", "fail"),
    "res-mislabels-0-3-1": (mislabels_031, "matrix/add-check-del", "fail"),
    "res-on-stderr": (result_on_stderr, "add/result-schema", "fail"),
    "res-link-down": (link_down, "connectivity/container-to-gateway", "fail"),
    "res-host-end-unbridged": (host_end_unbridged, "connectivity/container-to-gateway", "fail"),
    "res-mtu-lie": (mtu_lie, "add/result-matches-kernel", "fail", "{ref}/bridge"),
    "res-dns-garbage": (dns_garbage, "add/result-schema", "fail"),
    "res-old-without-ip": (old_result_without_ip, "matrix/add-check-del", "fail"),
    "res-ipam-with-interfaces": (ipam_with_interfaces, "add/ipam-result-shape", "fail", HOST_LOCAL,
                                 "host-local.json"),
    "res-ipam-hands-out-gateway": (ipam_hands_out_gateway, "ipam/no-reserved-addresses", "warn", HOST_LOCAL,
                                   "host-local.json"),
}
