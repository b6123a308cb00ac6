"""Mutants for the add/* cases: the ADD result and what ADD makes in the container."""

import os
import sys
import time

from mutantlib import Mutant, chain_edit, netns_run, on_add, passthrough, real, rewrite_add, HOST_LOCAL, REF_BRIDGE, TUNING


def add_extra_version_field(cmd, stdin):
    if cmd == "ADD":
        def change(r):
            for ip in r.get("ips", []):
                ip["version"] = "6" if ":" in ip["address"] else "4"
        rewrite_add(stdin, change)
    passthrough(real(stdin))


def add_wrong_version(cmd, stdin):
    if cmd == "ADD":
        rewrite_add(stdin, lambda r: r.update(cniVersion="0.4.0"))
    passthrough(real(stdin))


def add_lies_mac(cmd, stdin):
    if cmd == "ADD":
        def change(r):
            for itf in r.get("interfaces", []):
                if itf.get("sandbox"):
                    itf["mac"] = "02:00:00:00:be:ef"
        rewrite_add(stdin, change)
    passthrough(real(stdin))


def add_ignores_ifname(cmd, stdin):
    env = dict(os.environ)
    env["CNI_IFNAME"] = "eth0"
    passthrough(real(stdin, env))


def add_replaces_existing(cmd, stdin):
    if cmd == "ADD":
        netns_run(["ip", "link", "del", os.environ.get("CNI_IFNAME", "")])
    passthrough(real(stdin))


def prepend_interface(r):
    """Puts an entry of its own first without renumbering ips[].interface."""
    r.setdefault("interfaces", []).insert(0, {"name": "tuning0"})


def sandboxed(result):
    return [i for i in result.get("interfaces", []) if i.get("sandbox")]


def wrong_prefix(cmd, stdin):
    """Reports the container address with a /16 although the kernel has it as /24."""
    def change(r):
        for ip in r.get("ips", []):
            ip["address"] = ip["address"].split("/")[0] + "/16"
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


def result_on_stderr(cmd, stdin):
    p = real(stdin)
    if cmd == "ADD" and p.returncode == 0:
        sys.stderr.buffer.write(p.stdout)
        sys.exit(0)
    passthrough(p)


def ipam_with_interfaces(cmd, stdin):
    """An IPAM plugin that invents an interface list and points its addresses at it."""
    def change(r):
        r["interfaces"] = [{"name": os.environ.get("CNI_IFNAME", "eth0")}]
        for ip in r.get("ips", []):
            ip["interface"] = 0
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


def hangs(cmd, stdin):
    if cmd == "ADD":
        time.sleep(600)
    passthrough(real(stdin))


def floods(cmd, stdin):
    if cmd == "ADD":
        chunk = b"x" * (1 << 20)
        for _ in range(100):
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        sys.exit(0)
    passthrough(real(stdin))


MUTANTS = [
    Mutant(name="add-extra-version-field", run=add_extra_version_field, case="add/result-schema", status="fail"),
    Mutant(name="add-wrong-version", run=add_wrong_version, case="add/result-version", status="fail"),
    Mutant(name="add-lies-mac", run=add_lies_mac, case="add/result-matches-kernel", status="fail"),
    Mutant(name="add-ignores-ifname", run=add_ignores_ifname, case="add/custom-ifname", status="fail"),
    Mutant(name="add-replaces-existing", run=add_replaces_existing, case="add/interface-exists", status="fail"),
    Mutant(name="chain-shifts-interfaces", run=chain_edit(prepend_interface), case="add/result-matches-kernel", status="fail", wraps=TUNING, config="tuning.conflist"),
    Mutant(name="res-wrong-prefix", run=wrong_prefix, case="add/result-matches-kernel", status="fail"),
    Mutant(name="res-index-out-of-range", run=index_out_of_range, case="add/result-matches-kernel", status="fail"),
    Mutant(name="res-ips-on-host-veth", run=ips_on_host_veth, case="add/result-matches-kernel", status="fail"),
    Mutant(name="res-wrong-sandbox", run=wrong_sandbox, case="add/result-matches-kernel", status="fail"),
    Mutant(name="res-host-veth-sandboxed", run=host_veth_sandboxed, case="add/result-matches-kernel", status="fail"),
    Mutant(name="res-on-stderr", run=result_on_stderr, case="add/result-schema", status="fail"),
    Mutant(name="res-mtu-lie", run=mtu_lie, case="add/result-matches-kernel", status="fail", wraps=REF_BRIDGE),
    Mutant(name="res-dns-garbage", run=dns_garbage, case="add/result-schema", status="fail"),
    Mutant(name="res-ipam-with-interfaces", run=ipam_with_interfaces, case="add/ipam-result-shape", status="fail", wraps=HOST_LOCAL, config="host-local.json"),
    Mutant(name="add-hangs", run=hangs, case="add/result-schema", status="fail"),
    Mutant(name="add-floods", run=floods, case="add/result-schema", status="fail"),
]
