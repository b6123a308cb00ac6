"""Mutants for the error/* cases: how a plugin refuses bad input: codes, messages, versions, names."""

import json
import os
import subprocess
import sys

from mutantlib import Mutant, emit, failed, is_json, passthrough, real

BAD_IFNAMES = ("", "sixteen-bytes-xx", "..", "a/b", "a:b", "a b")


def error_accepts_garbage(cmd, stdin):
    if cmd == "ADD" and not is_json(stdin):
        emit({"cniVersion": "1.0.0"})
    passthrough(real(stdin))


def error_generic_code(cmd, stdin):
    p = real(stdin)
    if p.returncode != 0:
        emit({"code": 999, "msg": "something went wrong"}, 1)
    passthrough(p)


def error_ignores_env(cmd, stdin):
    env = dict(os.environ)
    if cmd == "ADD":
        env.setdefault("CNI_CONTAINERID", "made-up")
        env.setdefault("CNI_IFNAME", "eth9")
        if "CNI_NETNS" not in env:
            os.makedirs("/run/netns", exist_ok=True)
            subprocess.run(["ip", "netns", "add", "mutant-made-up"], check=False)
            env["CNI_NETNS"] = "/run/netns/mutant-made-up"
    passthrough(real(stdin, env))


def error_any_version(cmd, stdin):
    if cmd == "ADD" and is_json(stdin):
        conf = json.loads(stdin)
        if conf.get("cniVersion") not in ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"):
            conf["cniVersion"] = "1.0.0"
            stdin = json.dumps(conf).encode()
    passthrough(real(stdin))


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


MUTANTS = [
    Mutant(name="error-accepts-garbage", run=error_accepts_garbage, case="error/non-json-stdin", status="fail"),
    Mutant(name="error-generic-code", run=error_generic_code, case="error/non-json-stdin-code", status="warn"),
    Mutant(name="error-generic-code-env", run=error_generic_code, case="error/missing-env-code", status="warn"),
    Mutant(name="error-ignores-env", run=error_ignores_env, case="error/missing-env", status="fail"),
    Mutant(name="error-any-version", run=error_any_version, case="error/incompatible-version", status="fail"),
    Mutant(name="fail-netns-fallback", run=netns_fallback, case="error/missing-netns", status="fail"),
    Mutant(name="fail-code-zero", run=error_code_zero, case="error/non-json-stdin-code", status="warn"),
    Mutant(name="fail-no-msg", run=error_no_msg, case="error/non-json-stdin-code", status="warn"),
    Mutant(name="fail-on-stderr", run=error_on_stderr, case="error/non-json-stdin-code", status="warn"),
    Mutant(name="fail-exit-zero", run=error_exit_zero, case="error/incompatible-version", status="fail"),
    Mutant(name="accepts-bad-ifname", run=accepts_bad_ifname, case="error/bad-ifname", status="fail"),
    Mutant(name="accepts-bad-container-id", run=accepts_bad_container_id, case="error/bad-container-id", status="warn"),
    Mutant(name="default-network-name", run=default_network_name, case="error/missing-network-name", status="warn"),
    Mutant(name="ignores-unknown-command", run=ignores_unknown_command, case="error/unknown-command", status="warn"),
    Mutant(name="check-any-version", run=check_any_version, case="error/check-below-0-4-0", status="warn"),
    Mutant(name="gc-status-any-version", run=gc_status_any_version, case="error/gc-status-below-1-1-0", status="warn"),
]
