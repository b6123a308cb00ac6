"""Mutants a reviewer tries on hygiene: what a plugin leaves behind on the host, what it does to
other attachments, and what it prints or keeps running. They run inside the suite's lab (its
network and mount namespaces), so everything they change is the lab's."""
import glob
import hashlib
import json
import os
import subprocess
import sys
import time

from mutantlib import after_add, emit, passthrough, real

HOST_LOCAL = "/usr/lib/cni/host-local"


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


def daemonises(cmd, stdin):
    """ADD leaves a helper daemon behind: it forks twice, starts a new session and closes every
    inherited descriptor, so neither the process group nor the output pipes give it away."""
    if cmd == "ADD":
        p = real(stdin)
        if p.returncode == 0 and os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                null = os.open("/dev/null", os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.closerange(3, 1024)
                time.sleep(20)
            os._exit(0)
        time.sleep(0.1)
        passthrough(p)
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


MUTANTS = {
    "hyg-leaks-veth": (leaks_veth, "del/leaves-no-trace", "warn"),
    "hyg-leaks-rule": (leaks_rule, "del/leaves-no-trace", "warn"),
    "hyg-host-default-route": (host_default_route, "del/host-state-kept", "warn"),
    "hyg-sysctl-kept": (sysctl_kept, "del/restores-host-sysctls", "warn"),
    "hyg-sysctl-kept-unlisted": (sysctl_kept_unlisted, "del/restores-host-sysctls", "warn"),
    "hyg-cache-file": (cache_file, "del/leaves-no-trace", "warn"),
    "hyg-daemonises": (daemonises, "safety/exits-cleanly", "warn"),
    "hyg-del-prints": (del_prints, "del/prints-nothing", "warn"),
    "hyg-del-ignores-ifname": (del_ignores_ifname, "del/other-ifname-intact", "warn"),
    "hyg-release-by-container": (release_by_container, "del/other-ifname-intact", "warn", HOST_LOCAL,
                                 "host-local.json"),
    "hyg-release-by-ifname": (release_by_ifname, "del/leaves-no-trace", "warn", HOST_LOCAL, "host-local.json"),
}
