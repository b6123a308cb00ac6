"""Mutants for the delegation/* cases: a plugin that does not pass a verb on to its IPAM delegate,
or hands it other input than its own."""

import os

from mutantlib import Mutant, REF_BRIDGE, passthrough, real


def noop_delegate_path():
    """A directory holding a do-nothing plugin under every IPAM name the fixtures use, put first
    in CNI_PATH: the wrapped plugin then calls it instead of the real delegate."""
    d = "/run/mutant-noop-ipam"
    os.makedirs(d, exist_ok=True)
    for name in ("host-local", "static", "dhcp"):
        path = os.path.join(d, name)
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write("#!/bin/sh\ncat >/dev/null\nexit 0\n")
            os.chmod(path, 0o755)
    return d


def drops(verb):
    """A mutant that runs `verb` with a CNI_PATH whose delegate does nothing."""
    def mutant(cmd, stdin):
        env = dict(os.environ)
        if cmd == verb:
            env["CNI_PATH"] = noop_delegate_path() + ":" + env.get("CNI_PATH", "")
        passthrough(real(stdin, env))
    return mutant


def changes_env(cmd, stdin):
    """ADD runs the real plugin (and so its delegate) with CNI_ARGS the plugin was not given."""
    env = dict(os.environ)
    if cmd == "ADD":
        env["CNI_ARGS"] = "IgnoreUnknown=1"
    passthrough(real(stdin, env))


MUTANTS = [
    Mutant(name="deleg-changes-env", run=changes_env, case="delegation/same-input", status="fail"),
    Mutant(name="deleg-drops-del", run=drops("DEL"), case="delegation/del", status="fail"),
    Mutant(name="deleg-drops-check", run=drops("CHECK"), case="delegation/check", status="fail"),
    Mutant(name="deleg-drops-gc", run=drops("GC"), case="delegation/gc", status="fail", wraps=REF_BRIDGE),
    Mutant(name="deleg-drops-status", run=drops("STATUS"), case="delegation/status", status="fail", wraps=REF_BRIDGE),
]
