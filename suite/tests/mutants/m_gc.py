"""Mutants for the gc/* cases: GC (1.1.0); they wrap the project's reference bridge, Debian's plugins predate it."""

import json
import sys

from mutantlib import Mutant, emit, passthrough, real, REF_BRIDGE


def gc_prints(cmd, stdin):
    p = real(stdin)
    if cmd == "GC" and p.returncode == 0:
        emit({"cniVersion": "1.1.0", "removed": []})
    passthrough(p)


def gc_noop(cmd, stdin):
    if cmd == "GC":
        sys.exit(0)
    passthrough(real(stdin))


def gc_removes_everything(cmd, stdin):
    """Treats every attachment as stale."""
    if cmd == "GC":
        conf = json.loads(stdin)
        conf["cni.dev/valid-attachments"] = []
        conf["cni.dev/attachments"] = []
        stdin = json.dumps(conf).encode()
    passthrough(real(stdin))


def gc_needs_new_key(cmd, stdin):
    if cmd == "GC" and "cni.dev/valid-attachments" not in json.loads(stdin):
        emit({"code": 7, "msg": "missing cni.dev/valid-attachments"}, 1)
    passthrough(real(stdin))


def gc_ignores_empty_list(cmd, stdin):
    if cmd == "GC" and not json.loads(stdin).get("cni.dev/valid-attachments"):
        sys.exit(0)
    passthrough(real(stdin))


MUTANTS = [
    Mutant(name="gc-prints", run=gc_prints, case="gc/keeps-valid", status="fail", wraps=REF_BRIDGE),
    Mutant(name="gc-noop", run=gc_noop, case="gc/removes-stale", status="warn", wraps=REF_BRIDGE),
    Mutant(name="gc-removes-everything", run=gc_removes_everything, case="gc/keeps-valid", status="fail", wraps=REF_BRIDGE),
    Mutant(name="gc-needs-new-key", run=gc_needs_new_key, case="gc/legacy-key", status="warn", wraps=REF_BRIDGE),
    Mutant(name="gc-ignores-empty-list", run=gc_ignores_empty_list, case="gc/empty-list", status="warn", wraps=REF_BRIDGE),
]
