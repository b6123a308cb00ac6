"""Mutants for the status/* cases: STATUS (1.1.0); they wrap the project's reference bridge."""

import sys

from mutantlib import Mutant, emit, passthrough, real, REF_BRIDGE


def status_prints(cmd, stdin):
    p = real(stdin)
    if cmd == "STATUS" and p.returncode == 0:
        emit({"cniVersion": "1.1.0", "status": "ready"})
    passthrough(p)


def status_always_fails(cmd, stdin):
    if cmd == "STATUS":
        emit({"code": 50, "msg": "not ready"}, 1)
    passthrough(real(stdin))


def status_always_ok(cmd, stdin):
    if cmd == "STATUS":
        sys.exit(0)
    passthrough(real(stdin))


MUTANTS = [
    Mutant(name="status-prints", run=status_prints, case="status/ready", status="fail", wraps=REF_BRIDGE),
    Mutant(name="status-always-fails", run=status_always_fails, case="status/ready", status="fail", wraps=REF_BRIDGE),
    Mutant(name="status-always-ok", run=status_always_ok, case="status/exhausted", status="warn", wraps=REF_BRIDGE),
]
