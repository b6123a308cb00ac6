"""Mutants for the version/* cases: the VERSION answer, its schema and what it echoes."""

import sys

from mutantlib import Mutant, emit, is_json, passthrough, real


def version_not_json(cmd, stdin):
    if cmd == "VERSION":
        print("bridge plugin, versions 0.1.0 to 1.0.0")
        sys.exit(0)
    passthrough(real(stdin))


def version_bad_semver(cmd, stdin):
    if cmd == "VERSION":
        emit({"cniVersion": "1.0", "supportedVersions": ["0.4.0", "1.0.0"]})
    passthrough(real(stdin))


def version_bad_list(cmd, stdin):
    if cmd == "VERSION":
        emit({"cniVersion": "1.0.0", "supportedVersions": ["1.0", "latest"]})
    passthrough(real(stdin))


def version_needs_stdin(cmd, stdin):
    if cmd == "VERSION" and not is_json(stdin):
        emit({"code": 6, "msg": "cannot decode VERSION request"}, 1)
    passthrough(real(stdin))


def version_echo(cmd, stdin):
    if cmd == "VERSION":
        emit({"cniVersion": "1.0.0", "supportedVersions": ["0.3.1", "0.4.0", "1.0.0"]})
    passthrough(real(stdin))


MUTANTS = [
    Mutant(name="version-not-json", run=version_not_json, case="version/answers", status="fail"),
    Mutant(name="version-bad-semver", run=version_bad_semver, case="version/schema", status="fail"),
    Mutant(name="version-bad-list", run=version_bad_list, case="version/answers", status="fail"),
    Mutant(name="version-needs-stdin", run=version_needs_stdin, case="version/ignores-stdin", status="warn"),
    Mutant(name="version-no-echo", run=version_echo, case="version/echoes-request", status="warn"),
]
