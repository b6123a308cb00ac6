"""Mutants for the safety/* cases: what a plugin does to the host, and misbehaving plugins the runner must survive."""

import os
import subprocess
import sys
import time

from mutantlib import Mutant, passthrough, real


def daemonises(cmd, stdin):
    """ADD leaves a helper daemon behind: it forks twice, starts a new session and closes every
    inherited descriptor, so neither the process group nor the output pipes give it away."""
    if cmd == "ADD":
        p = real(stdin)
        if p.returncode == 0 and os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                null = os.open("/dev/null", os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.closerange(3, 1024)
                time.sleep(20)
            os._exit(0)
        time.sleep(0.1)
        passthrough(p)
    passthrough(real(stdin))


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


def writes_etc(cmd, stdin):
    """ADD writes a file under /etc, which DEL removes again."""
    path = "/etc/cni-conformance-mutant-" + os.environ.get("CNI_CONTAINERID", "")
    if cmd == "ADD":
        with open(path, "w") as f:
            f.write("written by ADD\n")
    elif cmd == "DEL" and os.path.exists(path):
        os.unlink(path)
    passthrough(real(stdin))


MUTANTS = [
    Mutant(name="hyg-daemonises", run=daemonises, case="safety/exits-cleanly", status="warn"),
    Mutant(name="no-netns-guard", run=no_netns_guard, case="safety/host-netns-refused", status="warn"),
    Mutant(name="leaves-daemon", run=leaves_daemon, case="safety/exits-cleanly", status="warn"),
    Mutant(name="writes-etc", run=writes_etc, case="safety/writes-only-data-places", status="warn"),
]
