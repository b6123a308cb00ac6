"""Mutants of the safety cases, and misbehaving plugins the runner must survive."""
import os
import subprocess
import sys
import time

from mutantlib import passthrough, real


def no_netns_guard(cmd, stdin):
    """Turns off libcni skel's own-netns guard, so ADD into the host namespace succeeds."""
    env = dict(os.environ)
    env["CNI_NETNS_OVERRIDE"] = "1"
    passthrough(real(stdin, env))


def leaves_daemon(cmd, stdin):
    """Starts a background process that keeps the plugin's stdout open."""
    if cmd in ("ADD", "DEL"):
        subprocess.Popen(["sleep", "30"], stdout=sys.stdout, stderr=sys.stderr)
    passthrough(real(stdin))


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


MUTANTS = {
    "no-netns-guard": (no_netns_guard, "safety/host-netns-refused", "warn"),
    "leaves-daemon": (leaves_daemon, "safety/exits-cleanly", "warn"),
    # Run by tests/cli.rs with a short --timeout: the runner must survive them.
    "add-hangs": (hangs, "add/result-schema", "fail"),
    "add-floods": (floods, "add/result-schema", "fail"),
}
