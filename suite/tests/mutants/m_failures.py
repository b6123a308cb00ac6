"""Mutants a reviewer tries on failure reporting, CHECK, chaining, address pools and the 1.1.0
verbs: each breaks one rule the earlier tables leave alone."""
import json
import os
import shutil
import sys
import time

from mutantlib import emit, netns_run, passthrough, real

HOST_LOCAL = "/usr/lib/cni/host-local"
TUNING = "/usr/lib/cni/tuning"
REF = "{ref}/bridge"


def failed(p):
    return p.returncode != 0


def netns_fallback(cmd, stdin):
    """When CNI_NETNS does not exist, quietly works in its own (the host's) namespace instead."""
    env = dict(os.environ)
    if cmd == "ADD" and not os.path.exists(env.get("CNI_NETNS", "")):
        env["CNI_NETNS"] = "/proc/self/ns/net"
        env["CNI_NETNS_OVERRIDE"] = "1"
    passthrough(real(stdin, env))


def error_code_zero(cmd, stdin):
    """Every failure comes back with code 0, which no spec version defines."""
    p = real(stdin)
    if failed(p):
        doc = json.loads(p.stdout or b"{}") if p.stdout.strip().startswith(b"{") else {}
        doc["code"] = 0
        doc.setdefault("msg", "failed")
        emit(doc, 1)
    passthrough(p)


def error_no_msg(cmd, stdin):
    """Failures carry a code but no msg."""
    p = real(stdin)
    if failed(p) and p.stdout.strip().startswith(b"{"):
        doc = json.loads(p.stdout)
        doc.pop("msg", None)
        doc.pop("details", None)
        emit(doc, 1)
    passthrough(p)


def error_on_stderr(cmd, stdin):
    """The Error object goes to stderr, stdout stays empty (the 1.x overview's wording)."""
    p = real(stdin)
    if failed(p):
        sys.stderr.buffer.write(p.stdout)
        sys.exit(p.returncode)
    passthrough(p)


def error_exit_zero(cmd, stdin):
    """Prints the Error object but exits 0 for a version it does not support."""
    p = real(stdin)
    if cmd == "ADD" and failed(p) and b'"code": 1' in p.stdout.replace(b'"code":1', b'"code": 1'):
        sys.stdout.buffer.write(p.stdout)
        sys.exit(0)
    passthrough(p)


def exhausted_code_1(cmd, stdin):
    """Reports an exhausted pool as an incompatible CNI version (code 1)."""
    p = real(stdin)
    if cmd == "ADD" and failed(p) and b"no IP addresses available" in p.stdout:
        emit({"code": 1, "msg": "no IP addresses available"}, 1)
    passthrough(p)


def racy_store(cmd, stdin):
    """Works on a copy of the shared store and writes it back afterwards: one ADD at a time is
    right, ADDs that overlap hand out the same address."""
    if cmd != "ADD":
        passthrough(real(stdin))
    conf = json.loads(stdin or b"{}")
    shared = conf.get("ipam", {}).get("dataDir") or "/var/lib/cni/networks"
    copy = "/run/mutant-racy-" + os.environ.get("CNI_CONTAINERID", "x")
    shutil.rmtree(copy, ignore_errors=True)
    if os.path.isdir(shared):
        shutil.copytree(shared, copy)
    conf.setdefault("ipam", {})["dataDir"] = copy
    p = real(json.dumps(conf).encode())
    time.sleep(0.3)
    if p.returncode == 0:
        shutil.copytree(copy, shared, dirs_exist_ok=True)
    shutil.rmtree(copy, ignore_errors=True)
    passthrough(p)


def check_ignores_mac(cmd, stdin):
    """CHECK forgets the MACs of prevResult, so a changed MAC goes unnoticed."""
    if cmd == "CHECK":
        conf = json.loads(stdin)
        for i in conf.get("prevResult", {}).get("interfaces", []):
            i.pop("mac", None)
        stdin = json.dumps(conf).encode()
    passthrough(real(stdin))


def check_repairs(cmd, stdin):
    """CHECK quietly brings the container interface back up (and its routes back) instead of
    reporting that it was down."""
    if cmd == "CHECK":
        ifname = os.environ.get("CNI_IFNAME", "")
        if "state DOWN" in netns_run(["ip", "link", "show", "dev", ifname]).stdout or \
                ",UP" not in netns_run(["ip", "link", "show", "dev", ifname]).stdout:
            netns_run(["ip", "link", "set", "dev", ifname, "up"])
            for route in json.loads(stdin).get("prevResult", {}).get("routes", []):
                cmd_line = ["ip", "route", "replace", route["dst"]]
                if route.get("gw"):
                    cmd_line += ["via", route["gw"]]
                netns_run(cmd_line + ["dev", ifname])
    passthrough(real(stdin))


def check_no_extra_routes(cmd, stdin):
    """CHECK insists the container has no IPv4 route beyond those of prevResult and the subnets."""
    if cmd == "CHECK":
        conf = json.loads(stdin)
        prev = conf.get("prevResult", {})
        want = len(prev.get("routes", [])) + len(prev.get("ips", []))
        out = netns_run(["ip", "-4", "-j", "route", "show", "table", "main"]).stdout or "[]"
        have = len(json.loads(out))
        if have > want:
            emit({"code": 100, "msg": f"{have} routes in the container, expected {want}"}, 1)
    passthrough(real(stdin))


def chain_edit(change):
    def mutant(cmd, stdin):
        p = real(stdin)
        if cmd == "ADD" and p.returncode == 0:
            result = json.loads(p.stdout)
            change(result)
            emit(result)
        passthrough(p)
    return mutant


def drop_dns(r):
    r.pop("dns", None)


def drop_gateways(r):
    for ip in r.get("ips", []):
        ip.pop("gateway", None)


def prepend_interface(r):
    """Puts an entry of its own first without renumbering ips[].interface."""
    r.setdefault("interfaces", []).insert(0, {"name": "tuning0"})


def drop_route_gw(r):
    for route in r.get("routes", []):
        route.pop("gw", None)


def gc_prints(cmd, stdin):
    p = real(stdin)
    if cmd == "GC" and p.returncode == 0:
        emit({"cniVersion": "1.1.0", "removed": []})
    passthrough(p)


def status_prints(cmd, stdin):
    p = real(stdin)
    if cmd == "STATUS" and p.returncode == 0:
        emit({"cniVersion": "1.1.0", "status": "ready"})
    passthrough(p)


def claims_old_fails_old(cmd, stdin):
    """Claims every version but refuses 0.1.0 and 0.2.0 with code 1."""
    if cmd == "ADD" and json.loads(stdin or b"{}").get("cniVersion") in ("0.1.0", "0.2.0"):
        emit({"code": 1, "msg": "version too old"}, 1)
    passthrough(real(stdin))


MUTANTS = {
    "fail-netns-fallback": (netns_fallback, "error/missing-netns", "fail"),
    "fail-code-zero": (error_code_zero, "error/non-json-stdin-code", "warn"),
    "fail-no-msg": (error_no_msg, "error/non-json-stdin-code", "warn"),
    "fail-on-stderr": (error_on_stderr, "error/non-json-stdin-code", "warn"),
    "fail-exit-zero": (error_exit_zero, "error/incompatible-version", "fail"),
    "fail-exhausted-code-1": (exhausted_code_1, "ipam/exhaustion-error", "warn", HOST_LOCAL, "host-local.json"),
    "ipam-racy-store": (racy_store, "ipam/unique-parallel", "fail", HOST_LOCAL, "host-local.json"),
    "check-ignores-mac": (check_ignores_mac, "check/changed-mac", "warn"),
    "check-repairs": (check_repairs, "check/interface-down", "warn"),
    "check-no-extra-routes": (check_no_extra_routes, "check/tolerates-extra-route", "fail"),
    "chain-drops-dns": (chain_edit(drop_dns), "chain/keeps-prevresult", "fail", TUNING, "tuning.conflist"),
    "chain-drops-gateways": (chain_edit(drop_gateways), "chain/keeps-prevresult", "fail", TUNING,
                             "tuning.conflist"),
    "chain-drops-route-gw": (chain_edit(drop_route_gw), "chain/keeps-prevresult", "fail", TUNING,
                             "tuning.conflist"),
    "chain-shifts-interfaces": (chain_edit(prepend_interface), "add/result-matches-kernel", "fail", TUNING,
                                "tuning.conflist"),
    "gc-prints": (gc_prints, "gc/keeps-valid", "fail", REF),
    "status-prints": (status_prints, "status/ready", "fail", REF),
    "claims-old-fails-old": (claims_old_fails_old, "matrix/add-check-del", "fail"),
}
