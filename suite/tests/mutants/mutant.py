#!/usr/bin/python3
"""Deliberately broken CNI plugins for the suite's self-test.

Each mutant wraps an upstream plugin (Debian's /usr/lib/cni) and breaks exactly one rule. The
mutant is chosen by the file name this script is invoked under (the tests create symlinks named
after the mutants). The mutants live in the m_<area>.py modules beside this file, one per area of
the catalogue (m_version.py, m_error.py, ... as `cni-conformance --list` groups the cases), each a
`mutantlib.Mutant` record naming the case that must catch it and the status it must report. A
case that no mutant can fail proves nothing: `cargo test` checks every listed case appears in
some mutant.

    mutant.py --table     prints: name case status config uses-reference-plugins

A wrapped binary written "{ref}/bridge" is the project's own reference plugin, built by the
mutant test into target/mutant-reference (for cases that need spec 1.1.0, which Debian's
upstream plugins do not speak).
"""
import dataclasses
import glob
import importlib
import os
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, HERE)

import mutantlib  # noqa: E402


def load():
    """Every mutant by name, with "{ref}" resolved; refuses duplicates and misfiled mutants."""
    table = {}
    for path in sorted(glob.glob(os.path.join(HERE, "m_*.py"))):
        module_name = os.path.basename(path)[:-3]
        area = module_name[len("m_"):]
        for mutant in importlib.import_module(module_name).MUTANTS:
            if mutant.name in table:
                raise SystemExit(f"mutant {mutant.name} defined twice")
            if mutant.case.split("/")[0] != area:
                raise SystemExit(f"mutant {mutant.name} catches {mutant.case}: it belongs in m_{mutant.case.split('/')[0]}.py")
            table[mutant.name] = dataclasses.replace(mutant, wraps=mutant.wraps.replace("{ref}", mutantlib.REFERENCE))
    return table


def main():
    table = load()
    if len(sys.argv) > 1 and sys.argv[1] == "--table":
        for mutant in table.values():
            uses_reference = "yes" if mutant.wraps.startswith(mutantlib.REFERENCE) else "no"
            print(f"{mutant.name} {mutant.case} {mutant.status} {mutant.config} {uses_reference}")
        return
    name = os.path.basename(sys.argv[0])
    mutant = table.get(name)
    if mutant is None:
        print('{"code": 100, "msg": "unknown mutant %s"}' % name)
        sys.exit(1)
    mutantlib.REAL = mutant.wraps
    stdin = sys.stdin.buffer.read()
    mutant.run(os.environ.get("CNI_COMMAND", ""), stdin)


if __name__ == "__main__":
    main()
