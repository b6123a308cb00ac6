"""Mutants of the GC and STATUS cases (spec 1.1.0): they wrap the project's reference bridge,
because Debian's upstream plugins do not speak 1.1.0."""
import json
import sys

from mutantlib import emit, passthrough, real

REF = "{ref}/bridge"


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


def status_always_fails(cmd, stdin):
    if cmd == "STATUS":
        emit({"code": 50, "msg": "not ready"}, 1)
    passthrough(real(stdin))


def status_always_ok(cmd, stdin):
    if cmd == "STATUS":
        sys.exit(0)
    passthrough(real(stdin))


MUTANTS = {
    "gc-noop": (gc_noop, "gc/removes-stale", "warn", REF),
    "gc-removes-everything": (gc_removes_everything, "gc/keeps-valid", "fail", REF),
    "gc-needs-new-key": (gc_needs_new_key, "gc/legacy-key", "warn", REF),
    "gc-ignores-empty-list": (gc_ignores_empty_list, "gc/empty-list", "warn", REF),
    "status-always-fails": (status_always_fails, "status/ready", "fail", REF),
    "status-always-ok": (status_always_ok, "status/exhausted", "warn", REF),
}
