"""Mutants for the ipam/* cases: host-local wrappers that break one address-management rule each."""
import ipaddress
import json
import os
import sys

from mutantlib import emit, passthrough, real

HOST_LOCAL = "/usr/lib/cni/host-local"


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


MUTANTS = {
    "ipam-private-store": (private_store, "ipam/unique-parallel", "fail", HOST_LOCAL, "host-local.json"),
    "ipam-del-keeps-address": (del_keeps_address, "ipam/no-leak-cycles", "warn", HOST_LOCAL, "host-local.json"),
    "ipam-full-pool-reuses": (full_pool_reuses, "ipam/exhaustion-fails", "fail", HOST_LOCAL, "host-local.json"),
    "ipam-full-pool-text": (full_pool_text, "ipam/exhaustion-error", "warn", HOST_LOCAL, "host-local.json"),
    "ipam-ignores-args": (ignores_requests, "ipam/requested-ip-args", "warn", HOST_LOCAL, "host-local.json"),
    "ipam-ignores-runtimeconfig": (ignores_requests, "ipam/requested-ip-runtimeconfig", "warn", HOST_LOCAL,
                                   "host-local.json"),
    "ipam-ignores-cni-args": (ignores_requests, "ipam/requested-ip-cni-args", "warn", HOST_LOCAL, "host-local.json"),
    "ipam-falls-back-when-taken": (falls_back_when_taken, "ipam/requested-ip-taken", "warn", HOST_LOCAL,
                                   "host-local.json"),
    "ipam-keeps-when-netns-gone": (keeps_when_netns_gone, "ipam/release-netns-gone", "warn", HOST_LOCAL,
                                   "host-local.json"),
    "ipam-hands-out-edges": (hands_out_edges, "ipam/no-reserved-addresses", "warn", HOST_LOCAL, "host-local.json"),
}
