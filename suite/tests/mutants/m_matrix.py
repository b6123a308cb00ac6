"""Mutants for the matrix/* cases: every version's ADD, CHECK and DEL, result shapes included."""

import json

from mutantlib import Mutant, emit, on_add, passthrough, real


def claims_old_fails_old(cmd, stdin):
    """Claims every version but refuses 0.1.0 and 0.2.0 with code 1."""
    if cmd == "ADD" and json.loads(stdin or b"{}").get("cniVersion") in ("0.1.0", "0.2.0"):
        emit({"code": 1, "msg": "version too old"}, 1)
    passthrough(real(stdin))


def old_versions_wrong_shape(cmd, stdin):
    """Answers 0.1.0/0.2.0 requests with a 1.0.0-shaped result (the loopback plugin's bug)."""
    if cmd == "ADD":
        conf = json.loads(stdin)
        version = conf.get("cniVersion")
        if version in ("0.1.0", "0.2.0"):
            conf["cniVersion"] = "1.0.0"
            p = real(json.dumps(conf).encode())
            if p.returncode != 0:
                passthrough(p)
            result = json.loads(p.stdout)
            result["cniVersion"] = version
            emit(result)
    passthrough(real(stdin))


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


def old_result_without_ip(cmd, stdin):
    """At 0.1.0/0.2.0, prints a result without its ip4 block."""
    def change(r):
        if r.get("cniVersion") in ("0.1.0", "0.2.0"):
            r.pop("ip4", None)
    on_add(cmd, stdin, change)


MUTANTS = [
    Mutant(name="claims-old-fails-old", run=claims_old_fails_old, case="matrix/add-check-del", status="fail"),
    Mutant(name="old-versions-wrong-shape", run=old_versions_wrong_shape, case="matrix/add-check-del", status="fail"),
    Mutant(name="res-version-family-mismatch", run=version_family_mismatch, case="matrix/add-check-del", status="fail"),
    Mutant(name="res-mislabels-0-3-1", run=mislabels_031, case="matrix/add-check-del", status="fail"),
    Mutant(name="res-old-without-ip", run=old_result_without_ip, case="matrix/add-check-del", status="fail"),
]
