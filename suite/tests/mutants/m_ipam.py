"""Mutants for the ipam/* cases: host-local wrappers that break one address-management rule each."""

import ipaddress
import json
import os
import shutil
import sys
import time

from mutantlib import Mutant, emit, failed, on_add, passthrough, real, HOST_LOCAL


def exhausted_code_1(cmd, stdin):
    """Reports an exhausted pool as an incompatible CNI version (code 1)."""
    p = real(stdin)
    if cmd == "ADD" and failed(p) and b"no IP addresses available" in p.stdout:
        emit({"code": 1, "msg": "no IP addresses available"}, 1)
    passthrough(p)


def racy_store(cmd, stdin):
    """Works on a copy of the shared store and writes it back afterwards: one ADD at a time is
    right, ADDs that overlap hand out the same address."""
    if cmd != "ADD":
        passthrough(real(stdin))
    conf = json.loads(stdin or b"{}")
    shared = conf.get("ipam", {}).get("dataDir") or "/var/lib/cni/networks"
    copy = "/run/mutant-racy-" + os.environ.get("CNI_CONTAINERID", "x")
    shutil.rmtree(copy, ignore_errors=True)
    if os.path.isdir(shared):
        shutil.copytree(shared, copy)
    conf.setdefault("ipam", {})["dataDir"] = copy
    p = real(json.dumps(conf).encode())
    time.sleep(0.3)
    if p.returncode == 0:
        shutil.copytree(copy, shared, dirs_exist_ok=True)
    shutil.rmtree(copy, ignore_errors=True)
    passthrough(p)


def conf_of(stdin):
    return json.loads(stdin or b"{}")


def ipv4_ranges(conf):
    for rset in conf.get("ipam", {}).get("ranges", []):
        for r in rset:
            net = ipaddress.ip_network(r["subnet"], strict=False)
            if net.version == 4:
                yield r, net


def private_store(cmd, stdin):
    """Every container gets its own store: no shared state, so parallel ADDs collide."""
    conf = conf_of(stdin)
    conf.setdefault("ipam", {})["dataDir"] = "/run/mutant-store-" + os.environ.get("CNI_CONTAINERID", "x")
    passthrough(real(json.dumps(conf).encode()))


def del_keeps_address(cmd, stdin):
    if cmd == "DEL":
        sys.exit(0)
    passthrough(real(stdin))


def full_pool_reuses(cmd, stdin):
    """On an exhausted pool, hands out the first address of the range again."""
    p = real(stdin)
    if cmd == "ADD" and p.returncode != 0:
        conf = conf_of(stdin)
        for r, net in ipv4_ranges(conf):
            first = r.get("rangeStart") or str(net.network_address + 2)
            emit({"cniVersion": conf.get("cniVersion"), "ips": [
                {"address": f"{first}/{net.prefixlen}", "gateway": r.get("gateway") or str(net.network_address + 1)}]})
    passthrough(p)


def full_pool_text(cmd, stdin):
    p = real(stdin)
    if cmd == "ADD" and p.returncode != 0:
        print("no addresses left")
        sys.exit(1)
    passthrough(p)


def ignores_requests(cmd, stdin):
    """Drops every requested IP (args.cni.ips, runtimeConfig.ips, CNI_ARGS IP=)."""
    conf = conf_of(stdin)
    conf.pop("args", None)
    conf.get("runtimeConfig", {}).pop("ips", None)
    env = dict(os.environ)
    env["CNI_ARGS"] = ";".join(kv for kv in env.get("CNI_ARGS", "").split(";") if kv and not kv.startswith("IP="))
    passthrough(real(json.dumps(conf).encode(), env))


def falls_back_when_taken(cmd, stdin):
    """When the requested IP is taken, quietly allocates another one instead of failing."""
    p = real(stdin)
    if cmd == "ADD" and p.returncode != 0:
        conf = conf_of(stdin)
        conf.pop("args", None)
        p = real(json.dumps(conf).encode())
    passthrough(p)


def keeps_when_netns_gone(cmd, stdin):
    if cmd == "DEL" and not os.path.exists(os.environ.get("CNI_NETNS", "")):
        sys.exit(0)
    passthrough(real(stdin))


def hands_out_edges(cmd, stdin):
    """Allocates from the network address to the broadcast address."""
    conf = conf_of(stdin)
    for r, net in ipv4_ranges(conf):
        r["rangeStart"] = str(net.network_address)
        r["rangeEnd"] = str(net.broadcast_address)
    passthrough(real(json.dumps(conf).encode()))


def ipam_hands_out_gateway(cmd, stdin):
    """Reports the gateway as the container's address when the first host address is allocated."""
    def change(r):
        for ip in r.get("ips", []):
            gw = ip.get("gateway")
            addr = ipaddress.ip_interface(ip["address"])
            if gw and int(addr.ip) == int(ipaddress.ip_address(gw)) + 1:
                ip["address"] = f"{gw}/{addr.network.prefixlen}"
    on_add(cmd, stdin, change)


MUTANTS = [
    Mutant(name="fail-exhausted-code-1", run=exhausted_code_1, case="ipam/exhaustion-error", status="warn", wraps=HOST_LOCAL, config="host-local.json"),
    Mutant(name="ipam-racy-store", run=racy_store, case="ipam/unique-parallel", status="fail", wraps=HOST_LOCAL, config="host-local.json"),
    Mutant(name="ipam-private-store", run=private_store, case="ipam/unique-parallel", status="fail", wraps=HOST_LOCAL, config="host-local.json"),
    Mutant(name="ipam-del-keeps-address", run=del_keeps_address, case="ipam/no-leak-cycles", status="warn", wraps=HOST_LOCAL, config="host-local.json"),
    Mutant(name="ipam-full-pool-reuses", run=full_pool_reuses, case="ipam/exhaustion-fails", status="fail", wraps=HOST_LOCAL, config="host-local.json"),
    Mutant(name="ipam-full-pool-text", run=full_pool_text, case="ipam/exhaustion-error", status="warn", wraps=HOST_LOCAL, config="host-local.json"),
    Mutant(name="ipam-ignores-args", run=ignores_requests, case="ipam/requested-ip-args", status="warn", wraps=HOST_LOCAL, config="host-local.json"),
    Mutant(name="ipam-ignores-runtimeconfig", run=ignores_requests, case="ipam/requested-ip-runtimeconfig", status="warn", wraps=HOST_LOCAL, config="host-local.json"),
    Mutant(name="ipam-ignores-cni-args", run=ignores_requests, case="ipam/requested-ip-cni-args", status="warn", wraps=HOST_LOCAL, config="host-local.json"),
    Mutant(name="ipam-falls-back-when-taken", run=falls_back_when_taken, case="ipam/requested-ip-taken", status="warn", wraps=HOST_LOCAL, config="host-local.json"),
    Mutant(name="ipam-keeps-when-netns-gone", run=keeps_when_netns_gone, case="ipam/release-netns-gone", status="warn", wraps=HOST_LOCAL, config="host-local.json"),
    Mutant(name="ipam-hands-out-edges", run=hands_out_edges, case="ipam/no-reserved-addresses", status="warn", wraps=HOST_LOCAL, config="host-local.json"),
    Mutant(name="res-ipam-hands-out-gateway", run=ipam_hands_out_gateway, case="ipam/no-reserved-addresses", status="warn", wraps=HOST_LOCAL, config="host-local.json"),
]
