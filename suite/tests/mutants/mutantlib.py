"""Shared pieces of the mutant plugins: run the real plugin, print, exit."""
import json
import os
import subprocess
import sys

# The upstream binary the current mutant wraps; set by mutant.py before the mutant runs.
REAL = "/usr/lib/cni/bridge"

# Where the mutant test builds the project's reference plugins ("{ref}" in a table row).
REFERENCE = os.path.normpath(
    os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", "..", "target", "mutant-reference", "release")
)


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
