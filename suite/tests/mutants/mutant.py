#!/usr/bin/python3
"""Deliberately broken CNI plugins for the suite's self-test.

Each mutant wraps an upstream plugin (Debian's /usr/lib/cni) and breaks exactly one rule. The
mutant is chosen by the file name this script is invoked under (the tests create symlinks named
after the table keys). The tables live in the m_*.py modules beside this file, one per area; each
row names the case that must catch the mutant and the status it must report. A case that no
mutant can fail proves nothing: `cargo test` checks every listed case appears in some row.

    mutant.py --table     prints: name case status config uses-reference-plugins

A wrapped binary written "{ref}/bridge" is the project's own reference plugin, built by the
mutant test into target/mutant-reference (for cases that need spec 1.1.0, which Debian's
upstream plugins do not speak).
"""
import glob
import importlib
import os
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, HERE)

import mutantlib  # noqa: E402


def load():
    table = {}
    for path in sorted(glob.glob(os.path.join(HERE, "m_*.py"))):
        module = importlib.import_module(os.path.basename(path)[:-3])
        for name, row in module.MUTANTS.items():
            if name in table:
                raise SystemExit(f"mutant {name} defined twice")
            func, case, status = row[:3]
            real = row[3] if len(row) > 3 else "/usr/lib/cni/bridge"
            config = row[4] if len(row) > 4 else "bridge.json"
            table[name] = (func, case, status, real.replace("{ref}", mutantlib.REFERENCE), config)
    return table


def main():
    table = load()
    if len(sys.argv) > 1 and sys.argv[1] == "--table":
        for name, (_, case, status, real, config) in table.items():
            uses_reference = "yes" if real.startswith(mutantlib.REFERENCE) else "no"
            print(f"{name} {case} {status} {config} {uses_reference}")
        return
    name = os.path.basename(sys.argv[0])
    entry = table.get(name)
    if entry is None:
        print('{"code": 100, "msg": "unknown mutant %s"}' % name)
        sys.exit(1)
    mutantlib.REAL = entry[3]
    stdin = sys.stdin.buffer.read()
    entry[0](os.environ.get("CNI_COMMAND", ""), stdin)


if __name__ == "__main__":
    main()
