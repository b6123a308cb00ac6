"""Shared pieces of the mutant plugins: the record each table row is, the plugins they wrap, and
running the real plugin, printing and exiting."""
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable

# The upstream binary the current mutant wraps; set by mutant.py before the mutant runs.
REAL = "/usr/lib/cni/bridge"

# Where the mutant test builds the project's reference plugins ("{ref}" in a table row).
REFERENCE = os.path.normpath(
    os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", "..", "target", "mutant-reference", "release")
)

# The plugins mutants wrap: Debian's upstream ones, and the project's reference bridge (for the
# 1.1.0 verbs Debian's plugins do not speak).
BRIDGE = "/usr/lib/cni/bridge"
HOST_LOCAL = "/usr/lib/cni/host-local"
TUNING = "/usr/lib/cni/tuning"
PORTMAP = "/usr/lib/cni/portmap"
BANDWIDTH = "/usr/lib/cni/bandwidth"
REF_BRIDGE = "{ref}/bridge"


@dataclass(frozen=True)
class Mutant:
    """One deliberately broken plugin and the case that must catch it."""

    # The mutant's name: the test invokes mutant.py through a symlink of this name.
    name: str
    # The mutant itself: run(CNI_COMMAND, stdin bytes); prints and exits like a plugin.
    run: Callable[[str, bytes], None]
    # The case id (area/slug) that must report `status`; its area names the file it lives in.
    case: str
    # "fail" (a must rule) or "warn" (a should rule).
    status: str
    # The plugin it wraps, "{ref}/..." for the reference build.
    wraps: str = BRIDGE
    # The fixture (tests/fixtures) the suite runs it with.
    config: str = "bridge.json"


def netns_run(args):
    ns = os.environ.get("CNI_NETNS", "")
    return subprocess.run(["nsenter", "--net=" + ns] + args, capture_output=True, text=True)


def real(stdin, env=None):
    p = subprocess.run([REAL], input=stdin, capture_output=True, env=env if env is not None else os.environ)
    sys.stderr.buffer.write(p.stderr)
    return p


def passthrough(p):
    sys.stdout.buffer.write(p.stdout)
    sys.exit(p.returncode)


def emit(doc, code=0):
    sys.stdout.write(json.dumps(doc))
    sys.exit(code)


def is_json(stdin):
    try:
        json.loads(stdin)
        return True
    except ValueError:
        return False


def rewrite_add(stdin, change):
    """Runs the real ADD and lets `change` edit the result before printing it."""
    p = real(stdin)
    if p.returncode != 0:
        passthrough(p)
    result = json.loads(p.stdout)
    change(result)
    emit(result)


def after_add(stdin, change):
    """Runs the real ADD, then `change(result)` on the lab, then prints the result unchanged."""
    p = real(stdin)
    if p.returncode == 0:
        change(json.loads(p.stdout))
    passthrough(p)


def failed(p):
    """Whether the real plugin's run `p` failed."""
    return p.returncode != 0


def on_add(cmd, stdin, change):
    """On ADD, prints the real result after `change` edited it; any other verb passes through."""
    if cmd == "ADD":
        rewrite_add(stdin, change)
    passthrough(real(stdin))


def chain_edit(change):
    """A mutant that lets `change` edit its ADD result (for chained plugins, whose result is
    their prevResult carried on)."""
    def mutant(cmd, stdin):
        p = real(stdin)
        if cmd == "ADD" and p.returncode == 0:
            result = json.loads(p.stdout)
            change(result)
            emit(result)
        passthrough(p)
    return mutant
