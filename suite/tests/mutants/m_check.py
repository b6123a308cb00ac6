"""Mutants for the check/* cases: CHECK after ADD, and what it must notice is missing."""

import json
import os
import sys

from mutantlib import Mutant, emit, netns_run, passthrough, real


def check_always_ok(cmd, stdin):
    if cmd == "CHECK":
        sys.exit(0)
    passthrough(real(stdin))


def check_always_fails(cmd, stdin):
    if cmd == "CHECK":
        emit({"code": 100, "msg": "container is unhealthy"}, 1)
    passthrough(real(stdin))


def check_no_extra_addresses(cmd, stdin):
    if cmd == "CHECK":
        conf = json.loads(stdin)
        want = len(conf.get("prevResult", {}).get("ips", []))
        ifname = os.environ.get("CNI_IFNAME", "")
        out = netns_run(["ip", "-4", "-j", "addr", "show", "dev", ifname]).stdout or "[]"
        have = sum(len(link.get("addr_info", [])) for link in json.loads(out))
        if have > want:
            emit({"code": 100, "msg": f"{ifname} has {have} IPv4 addresses, expected {want}"}, 1)
    passthrough(real(stdin))


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


MUTANTS = [
    Mutant(name="check-always-ok", run=check_always_ok, case="check/missing-address", status="warn"),
    Mutant(name="check-always-ok-route", run=check_always_ok, case="check/missing-route", status="warn"),
    Mutant(name="check-always-ok-link", run=check_always_ok, case="check/missing-interface", status="warn"),
    Mutant(name="check-always-ok-host", run=check_always_ok, case="check/host-end-gone", status="warn"),
    Mutant(name="check-always-fails", run=check_always_fails, case="check/after-add", status="fail"),
    Mutant(name="check-no-extra-addresses", run=check_no_extra_addresses, case="check/tolerates-extra-route", status="fail"),
    Mutant(name="check-ignores-mac", run=check_ignores_mac, case="check/changed-mac", status="warn"),
    Mutant(name="check-repairs", run=check_repairs, case="check/interface-down", status="warn"),
    Mutant(name="check-no-extra-routes", run=check_no_extra_routes, case="check/tolerates-extra-route", status="fail"),
]
