"""Mutants of the first cases: version, error, add, check, del, connectivity (wrap upstream bridge)."""
import json
import os
import subprocess
import sys

from mutantlib import emit, is_json, netns_run, passthrough, real, rewrite_add

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


def add_extra_version_field(cmd, stdin):
    if cmd == "ADD":
        def change(r):
            for ip in r.get("ips", []):
                ip["version"] = "6" if ":" in ip["address"] else "4"
        rewrite_add(stdin, change)
    passthrough(real(stdin))


def add_wrong_version(cmd, stdin):
    if cmd == "ADD":
        rewrite_add(stdin, lambda r: r.update(cniVersion="0.4.0"))
    passthrough(real(stdin))


def add_lies_mac(cmd, stdin):
    if cmd == "ADD":
        def change(r):
            for itf in r.get("interfaces", []):
                if itf.get("sandbox"):
                    itf["mac"] = "02:00:00:00:be:ef"
        rewrite_add(stdin, change)
    passthrough(real(stdin))


def add_lies_gateway(cmd, stdin):
    if cmd == "ADD":
        def change(r):
            for ip in r.get("ips", []):
                ip["gateway"] = "10.88.0.254"
        rewrite_add(stdin, change)
    passthrough(real(stdin))


def del_fails_twice(cmd, stdin):
    if cmd == "DEL":
        marker = "/run/mutant-del-" + os.environ.get("CNI_CONTAINERID", "")
        if os.path.exists(marker):
            emit({"code": 3, "msg": "container already deleted"}, 1)
        open(marker, "w").close()
    passthrough(real(stdin))


def del_needs_add(cmd, stdin):
    if cmd == "DEL" and "prevResult" not in json.loads(stdin or b"{}"):
        emit({"code": 3, "msg": "unknown container"}, 1)
    passthrough(real(stdin))


def del_noop(cmd, stdin):
    if cmd == "DEL":
        sys.exit(0)
    passthrough(real(stdin))


def check_always_ok(cmd, stdin):
    if cmd == "CHECK":
        sys.exit(0)
    passthrough(real(stdin))


def check_always_fails(cmd, stdin):
    if cmd == "CHECK":
        emit({"code": 100, "msg": "container is unhealthy"}, 1)
    passthrough(real(stdin))


def check_no_extra_addresses(cmd, stdin):
    if cmd == "CHECK":
        conf = json.loads(stdin)
        want = len(conf.get("prevResult", {}).get("ips", []))
        ifname = os.environ.get("CNI_IFNAME", "")
        out = netns_run(["ip", "-4", "-j", "addr", "show", "dev", ifname]).stdout or "[]"
        have = sum(len(link.get("addr_info", [])) for link in json.loads(out))
        if have > want:
            emit({"code": 100, "msg": f"{ifname} has {have} IPv4 addresses, expected {want}"}, 1)
    passthrough(real(stdin))


def del_needs_netns(cmd, stdin):
    if cmd == "DEL" and not os.path.exists(os.environ.get("CNI_NETNS", "")):
        emit({"code": 100, "msg": "failed to open netns"}, 1)
    passthrough(real(stdin))


def del_needs_netns_noop(cmd, stdin):
    if cmd == "DEL" and not os.path.exists(os.environ.get("CNI_NETNS", "")):
        sys.exit(0)
    passthrough(real(stdin))


def del_empty_netns_fails(cmd, stdin):
    if cmd == "DEL" and not os.environ.get("CNI_NETNS"):
        emit({"code": 4, "msg": "required env variables [CNI_NETNS] missing"}, 1)
    passthrough(real(stdin))


def del_empty_netns_noop(cmd, stdin):
    if cmd == "DEL" and not os.environ.get("CNI_NETNS"):
        sys.exit(0)
    passthrough(real(stdin))


def del_without_prevresult_noop(cmd, stdin):
    if cmd == "DEL" and "prevResult" not in json.loads(stdin or b"{}"):
        sys.exit(0)
    passthrough(real(stdin))


def add_ignores_ifname(cmd, stdin):
    env = dict(os.environ)
    env["CNI_IFNAME"] = "eth0"
    passthrough(real(stdin, env))


def add_replaces_existing(cmd, stdin):
    if cmd == "ADD":
        netns_run(["ip", "link", "del", os.environ.get("CNI_IFNAME", "")])
    passthrough(real(stdin))


# name -> (what it does, the case that must catch it, the status that case must report
#          [, the upstream binary it wraps [, the --config fixture]])
MUTANTS = {
    "version-not-json": (version_not_json, "version/answers", "fail"),
    "version-bad-semver": (version_bad_semver, "version/schema", "fail"),
    "version-bad-list": (version_bad_list, "version/answers", "fail"),
    "version-needs-stdin": (version_needs_stdin, "version/ignores-stdin", "warn"),
    "version-no-echo": (version_echo, "version/echoes-request", "warn"),
    "error-accepts-garbage": (error_accepts_garbage, "error/non-json-stdin", "fail"),
    "error-generic-code": (error_generic_code, "error/non-json-stdin-code", "warn"),
    "error-generic-code-env": (error_generic_code, "error/missing-env-code", "warn"),
    "error-ignores-env": (error_ignores_env, "error/missing-env", "fail"),
    "error-any-version": (error_any_version, "error/incompatible-version", "fail"),
    "add-extra-version-field": (add_extra_version_field, "add/result-schema", "fail"),
    "add-wrong-version": (add_wrong_version, "add/result-version", "fail"),
    "add-lies-mac": (add_lies_mac, "add/result-matches-kernel", "fail"),
    "add-lies-gateway": (add_lies_gateway, "connectivity/container-to-gateway", "fail"),
    "del-fails-twice": (del_fails_twice, "del/idempotent", "fail"),
    "del-needs-add": (del_needs_add, "del/without-add", "fail"),
    "del-noop": (del_noop, "del/leaves-no-trace", "warn"),
    "check-always-ok": (check_always_ok, "check/missing-address", "warn"),
    "check-always-ok-route": (check_always_ok, "check/missing-route", "warn"),
    "check-always-ok-link": (check_always_ok, "check/missing-interface", "warn"),
    "check-always-ok-host": (check_always_ok, "check/host-end-gone", "warn"),
    "check-always-fails": (check_always_fails, "check/after-add", "fail"),
    "check-no-extra-addresses": (check_no_extra_addresses, "check/tolerates-extra-route", "fail"),
    "del-needs-netns": (del_needs_netns, "del/netns-gone", "fail"),
    "del-netns-gone-noop": (del_needs_netns_noop, "del/netns-gone-leaves-no-trace", "warn"),
    "del-empty-netns-fails": (del_empty_netns_fails, "del/empty-netns", "warn"),
    "del-empty-netns-noop": (del_empty_netns_noop, "del/empty-netns-leaves-no-trace", "warn"),
    "del-without-prevresult-noop": (del_without_prevresult_noop, "del/without-prevresult-leaves-no-trace", "warn"),
    "del-without-prevresult-fails": (del_needs_add, "del/without-prevresult", "warn"),
    "del-needs-add-after-failure": (del_needs_add, "del/after-failed-add", "fail"),
    "add-ignores-ifname": (add_ignores_ifname, "add/custom-ifname", "fail"),
    "add-replaces-existing": (add_replaces_existing, "add/interface-exists", "fail"),
}


