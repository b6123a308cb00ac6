"""Mutants of the protocol-error cases (wrap upstream bridge)."""
import json
import os
import sys

from mutantlib import emit, passthrough, real

BAD_IFNAMES = ("", "sixteen-bytes-xx", "..", "a/b", "a:b", "a b")


def accepts_bad_ifname(cmd, stdin):
    env = dict(os.environ)
    if cmd == "ADD" and env.get("CNI_IFNAME") in BAD_IFNAMES:
        env["CNI_IFNAME"] = "eth0"
    passthrough(real(stdin, env))


def accepts_bad_container_id(cmd, stdin):
    env = dict(os.environ)
    cid = env.get("CNI_CONTAINERID", "")
    env["CNI_CONTAINERID"] = "".join(c for c in cid if c.isalnum() or c in "_.-") or "x"
    passthrough(real(stdin, env))


def default_network_name(cmd, stdin):
    try:
        conf = json.loads(stdin)
        conf.setdefault("name", "default")
        stdin = json.dumps(conf).encode()
    except ValueError:
        pass
    passthrough(real(stdin))


def ignores_unknown_command(cmd, stdin):
    if cmd not in ("ADD", "DEL", "CHECK", "VERSION", "GC", "STATUS"):
        sys.exit(0)
    passthrough(real(stdin))


def check_any_version(cmd, stdin):
    if cmd == "CHECK":
        conf = json.loads(stdin)
        if conf.get("cniVersion", "").startswith("0.3"):
            conf["cniVersion"] = "0.4.0"
            stdin = json.dumps(conf).encode()
    passthrough(real(stdin))


def gc_status_any_version(cmd, stdin):
    if cmd == "VERSION":
        emit({"cniVersion": "1.1.0", "supportedVersions": ["0.3.1", "0.4.0", "1.0.0", "1.1.0"]})
    if cmd in ("GC", "STATUS"):
        sys.exit(0)
    passthrough(real(stdin))


MUTANTS = {
    "accepts-bad-ifname": (accepts_bad_ifname, "error/bad-ifname", "fail"),
    "accepts-bad-container-id": (accepts_bad_container_id, "error/bad-container-id", "warn"),
    "default-network-name": (default_network_name, "error/missing-network-name", "warn"),
    "ignores-unknown-command": (ignores_unknown_command, "error/unknown-command", "warn"),
    "check-any-version": (check_any_version, "error/check-below-0-4-0", "warn"),
    "gc-status-any-version": (gc_status_any_version, "error/gc-status-below-1-1-0", "warn"),
}
