"""Mutants for the del/* cases: DEL in every situation (twice, without ADD, netns gone) and what it leaves behind."""

import glob
import hashlib
import json
import os
import subprocess
import sys

from mutantlib import Mutant, after_add, emit, passthrough, real, HOST_LOCAL


def del_fails_twice(cmd, stdin):
    if cmd == "DEL":
        marker = "/run/mutant-del-" + os.environ.get("CNI_CONTAINERID", "")
        if os.path.exists(marker):
            emit({"code": 3, "msg": "container already deleted"}, 1)
        open(marker, "w").close()
    passthrough(real(stdin))


def del_needs_add(cmd, stdin):
    if cmd == "DEL" and "prevResult" not in json.loads(stdin or b"{}"):
        emit({"code": 3, "msg": "unknown container"}, 1)
    passthrough(real(stdin))


def del_noop(cmd, stdin):
    if cmd == "DEL":
        sys.exit(0)
    passthrough(real(stdin))


def del_needs_netns(cmd, stdin):
    if cmd == "DEL" and not os.path.exists(os.environ.get("CNI_NETNS", "")):
        emit({"code": 100, "msg": "failed to open netns"}, 1)
    passthrough(real(stdin))


def del_needs_netns_noop(cmd, stdin):
    if cmd == "DEL" and not os.path.exists(os.environ.get("CNI_NETNS", "")):
        sys.exit(0)
    passthrough(real(stdin))


def del_empty_netns_fails(cmd, stdin):
    if cmd == "DEL" and not os.environ.get("CNI_NETNS"):
        emit({"code": 4, "msg": "required env variables [CNI_NETNS] missing"}, 1)
    passthrough(real(stdin))


def del_empty_netns_noop(cmd, stdin):
    if cmd == "DEL" and not os.environ.get("CNI_NETNS"):
        sys.exit(0)
    passthrough(real(stdin))


def del_without_prevresult_noop(cmd, stdin):
    if cmd == "DEL" and "prevResult" not in json.loads(stdin or b"{}"):
        sys.exit(0)
    passthrough(real(stdin))


def short(text):
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def leaks_veth(cmd, stdin):
    """ADD also makes a helper veth pair on the host that nothing ever deletes."""
    if cmd == "ADD":
        name = "mut" + short(os.environ.get("CNI_CONTAINERID", ""))
        after_add(stdin, lambda r: subprocess.run(["ip", "link", "add", name, "type", "veth", "peer",
                                                   "name", name + "p"]))
    passthrough(real(stdin))


def leaks_rule(cmd, stdin):
    """ADD accepts forwarded traffic from the container with a rule DEL never removes."""
    def change(r):
        for ip in r.get("ips", []):
            if ":" not in ip["address"]:
                subprocess.run(["iptables", "-A", "FORWARD", "-s", ip["address"].split("/")[0], "-j", "ACCEPT"])
    if cmd == "ADD":
        after_add(stdin, change)
    passthrough(real(stdin))


def host_default_route(cmd, stdin):
    """Applies the container's default route in the host namespace too (a wrong-namespace bug):
    the host's own default route is replaced and never comes back."""
    def change(r):
        bridges = [i["name"] for i in r.get("interfaces", []) if not i.get("sandbox")]
        subprocess.run(["ip", "route", "replace", "default", "dev", bridges[0]])
    if cmd == "ADD":
        after_add(stdin, change)
    passthrough(real(stdin))


def sysctl_kept(cmd, stdin):
    """ADD turns on proxy ARP for the whole host and nothing ever turns it off again."""
    if cmd == "ADD":
        after_add(stdin, lambda r: open("/proc/sys/net/ipv4/conf/all/proxy_arp", "w").write("1"))
    passthrough(real(stdin))


def sysctl_kept_unlisted(cmd, stdin):
    """Like sysctl_kept, with a switch outside the suite's short list of well-known sysctls."""
    if cmd == "ADD":
        after_add(stdin, lambda r: open("/proc/sys/net/ipv4/conf/all/accept_local", "w").write("1"))
    passthrough(real(stdin))


def cache_file(cmd, stdin):
    """ADD keeps its result under /var/lib/cni; DEL never removes it."""
    if cmd == "ADD":
        def change(r):
            os.makedirs("/var/lib/cni/mutant-cache", exist_ok=True)
            with open("/var/lib/cni/mutant-cache/" + os.environ.get("CNI_CONTAINERID", "x"), "w") as f:
                json.dump(r, f)
        after_add(stdin, change)
    passthrough(real(stdin))


def del_prints(cmd, stdin):
    """DEL prints the prevResult back on stdout."""
    p = real(stdin)
    if cmd == "DEL" and p.returncode == 0:
        conf = json.loads(stdin or b"{}")
        emit(conf.get("prevResult") or {"cniVersion": conf.get("cniVersion", "")})
    passthrough(p)


def del_ignores_ifname(cmd, stdin):
    """DEL always works on eth0, whatever CNI_IFNAME says."""
    env = dict(os.environ)
    if cmd == "DEL":
        env["CNI_IFNAME"] = "eth0"
    passthrough(real(stdin, env))


def store_files(conf):
    root = conf.get("ipam", {}).get("dataDir") or "/var/lib/cni/networks"
    return [f for f in glob.glob(os.path.join(root, conf.get("name", ""), "*")) if os.path.isfile(f)]


def release_by_container(cmd, stdin):
    """host-local from before 0.8: DEL releases every address of the container id, whatever the
    interface."""
    if cmd == "DEL":
        cid = os.environ.get("CNI_CONTAINERID", "")
        for f in store_files(json.loads(stdin or b"{}")):
            lines = open(f).read().split()
            if lines and lines[0] == cid:
                os.unlink(f)
    passthrough(real(stdin))


def release_by_ifname(cmd, stdin):
    """DEL releases every address held under CNI_IFNAME, whatever the container."""
    if cmd == "DEL":
        ifname = os.environ.get("CNI_IFNAME", "")
        for f in store_files(json.loads(stdin or b"{}")):
            lines = open(f).read().split()
            if len(lines) > 1 and lines[1] == ifname:
                os.unlink(f)
    passthrough(real(stdin))


def route_on_lo(cmd, stdin):
    """ADD also routes a prefix through the host's lo (acting on the wrong namespace) and never
    removes it."""
    p = real(stdin)
    if cmd == "ADD" and p.returncode == 0:
        subprocess.run(["ip", "route", "replace", "203.0.113.0/24", "dev", "lo"], capture_output=True)
    passthrough(p)


MUTANTS = [
    Mutant(name="del-fails-twice", run=del_fails_twice, case="del/idempotent", status="fail"),
    Mutant(name="del-needs-add", run=del_needs_add, case="del/without-add", status="fail"),
    Mutant(name="del-noop", run=del_noop, case="del/leaves-no-trace", status="warn"),
    Mutant(name="del-needs-netns", run=del_needs_netns, case="del/netns-gone", status="fail"),
    Mutant(name="del-netns-gone-noop", run=del_needs_netns_noop, case="del/netns-gone-leaves-no-trace", status="warn"),
    Mutant(name="del-empty-netns-fails", run=del_empty_netns_fails, case="del/empty-netns", status="warn"),
    Mutant(name="del-empty-netns-noop", run=del_empty_netns_noop, case="del/empty-netns-leaves-no-trace", status="warn"),
    Mutant(name="del-without-prevresult-noop", run=del_without_prevresult_noop, case="del/without-prevresult-leaves-no-trace", status="warn"),
    Mutant(name="del-without-prevresult-fails", run=del_needs_add, case="del/without-prevresult", status="warn"),
    Mutant(name="del-needs-add-after-failure", run=del_needs_add, case="del/after-failed-add", status="fail"),
    Mutant(name="hyg-leaks-veth", run=leaks_veth, case="del/leaves-no-trace", status="warn"),
    Mutant(name="hyg-leaks-rule", run=leaks_rule, case="del/leaves-no-trace", status="warn"),
    Mutant(name="hyg-host-default-route", run=host_default_route, case="del/host-state-kept", status="warn"),
    Mutant(name="hyg-sysctl-kept", run=sysctl_kept, case="del/restores-host-sysctls", status="warn"),
    Mutant(name="hyg-sysctl-kept-unlisted", run=sysctl_kept_unlisted, case="del/restores-host-sysctls", status="warn"),
    Mutant(name="hyg-cache-file", run=cache_file, case="del/leaves-no-trace", status="warn"),
    Mutant(name="hyg-del-prints", run=del_prints, case="del/prints-nothing", status="warn"),
    Mutant(name="hyg-del-ignores-ifname", run=del_ignores_ifname, case="del/other-ifname-intact", status="warn"),
    Mutant(name="hyg-release-by-container", run=release_by_container, case="del/other-ifname-intact", status="warn", wraps=HOST_LOCAL, config="host-local.json"),
    Mutant(name="host-route-on-lo", run=route_on_lo, case="del/keeps-only-network-state", status="warn"),
    Mutant(name="hyg-release-by-ifname", run=release_by_ifname, case="del/leaves-no-trace", status="warn", wraps=HOST_LOCAL, config="host-local.json"),
]
