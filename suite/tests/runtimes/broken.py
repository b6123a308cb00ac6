#!/usr/bin/env python3
"""A small hand-written CNI runtime for runtime-mode self-tests.

Without an argument it follows the rules (like the control runtime); `broken.py BREAKAGE` breaks
exactly one rule, so each breakage proves that runtime mode catches it. It runs under
`cni-conformance runtime -- python3 broken.py BREAKAGE` inside the suite's lab.

`broken.py cri` plays a CRI runtime together with its kubelet: it passes K8S_POD_* arguments and
the pod's capability arguments, and writes the CRI record (CNI_CONFORMANCE_CRI_RECORD) that
`cni-conformance cri` would write; `broken.py k8s-...` breaks one Kubernetes rule that way.
"""
import glob
import json
import os
import subprocess
import sys
import threading
import time

BREAK = sys.argv[1] if len(sys.argv) > 1 else "none"
CRI = BREAK == "cri" or BREAK.startswith("k8s-")
CONF = sorted(glob.glob(os.path.join(os.environ["CNI_CONFORMANCE_CONF_DIR"], "*.conflist")))[0]
BIN = os.environ["CNI_CONFORMANCE_BIN_DIR"]
CAPS = {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
        "mac": "c2:11:22:33:44:55", "aliases": ["x"]}

if CRI:
    # What a CRI runtime derives from the pod below (CONVENTIONS.md spelling).
    CAPS = {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
            "bandwidth": {"ingressRate": 1000000, "ingressBurst": 4294967295,
                          "egressRate": 2000000, "egressBurst": 4294967295}}
    if BREAK == "k8s-wrong-bandwidth":
        CAPS["bandwidth"]["ingressRate"] = 1000
    if BREAK == "k8s-capitalized-ports":
        CAPS["portMappings"] = [{"HostPort": 8080, "ContainerPort": 80, "Protocol": "tcp"}]
    if BREAK == "k8s-no-ports":
        del CAPS["portMappings"]

conf = json.load(open(CONF))
plugins = conf["plugins"]


def vt(v):
    return tuple(int(x) for x in v.split("."))


candidates = conf.get("cniVersions", []) + [conf["cniVersion"]]
if BREAK != "future-version":
    candidates = [v for v in candidates if vt(v) <= (1, 1, 0)]
version = (min if BREAK == "lowest-version" else max)(candidates, key=vt)
if BREAK == "wrong-version":
    version = "0.4.0"
v = vt(version)
ns = "brk%d" % os.getpid()
netns = "/run/netns/" + ns
cid = "broken-%d" % os.getpid()
POD = {"name": "broken-pod", "namespace": "broken-ns", "uid": "0b0e5c1e-0000-4000-8000-000000000001",
       "attempt": 0, "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "TCP", "hostIp": ""}],
       "annotations": {"kubernetes.io/ingress-bandwidth": "1M", "kubernetes.io/egress-bandwidth": "2M"},
       "dns": {"servers": ["10.96.0.10"], "searches": ["cluster.local"], "options": []}}
K8S_ARGS = "IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;K8S_POD_INFRA_CONTAINER_ID=%s;K8S_POD_UID=%s" % (
    POD["namespace"], "someone-else" if BREAK == "k8s-wrong-pod-name" else POD["name"], cid, POD["uid"])
if BREAK == "k8s-no-ignore-unknown":
    K8S_ARGS = K8S_ARGS.replace("IgnoreUnknown=1;", "")


def request(p, prev=None, verb="ADD"):
    r = dict(p)
    if BREAK != "no-name":
        r["name"] = conf["name"]
    r["cniVersion"] = version
    caps = r.pop("capabilities", {}) if BREAK != "keep-capabilities" else r.get("capabilities", {})
    if verb in ("ADD", "CHECK", "DEL"):
        if BREAK == "undeclared-caps":
            rc = dict(CAPS)
        else:
            rc = {k: val for k, val in CAPS.items() if caps.get(k) is True}
        if rc and not (BREAK == "check-other-caps" and verb == "CHECK"):
            r["runtimeConfig"] = rc
    if BREAK == "drop-keys":
        r.pop("conformanceProbe", None)
    if BREAK == "bad-args":
        r["args"] = 5
    if prev is not None:
        r["prevResult"] = prev
    return r


def env_for(verb, ifname="eth0", netns_path=None):
    e = dict(os.environ)
    e.update(CNI_COMMAND=verb, CNI_CONTAINERID=cid, CNI_NETNS=netns if netns_path is None else netns_path,
             CNI_IFNAME=ifname, CNI_ARGS=K8S_ARGS if CRI else "", CNI_PATH=BIN)
    if BREAK == "no-cni-path":
        e.pop("CNI_PATH")
    if verb in ("GC", "STATUS"):
        for k in ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS"):
            e.pop(k, None)
    if BREAK == "no-ifname" and verb == "DEL":
        e.pop("CNI_IFNAME")
    return e


def run(p, verb, stdin, **kw):
    cmd = [os.path.join(BIN, p["type"])]
    if BREAK == "plugin-in-container" and verb in ("ADD", "CHECK", "DEL"):
        cmd = ["ip", "netns", "exec", ns] + cmd
    out = subprocess.run(cmd, input=json.dumps(stdin).encode(), env=env_for(verb, **kw),
                         stdout=subprocess.PIPE)
    return out.returncode, out.stdout.decode()


def add():
    prev, results = None, []
    order = list(reversed(plugins)) if BREAK == "add-reverse" else plugins
    for i, p in enumerate(order):
        pr = prev
        if BREAK == "prev-on-first" and i == 0:
            pr = {"cniVersion": version}
        if BREAK == "no-chain":
            pr = None
        kw = {"netns_path": "/run/netns/does-not-exist"} if BREAK == "no-netns" else {}
        code, out = run(p, "ADD", request(p, pr), **kw)
        if code != 0:
            if BREAK != "continue-after-failure":
                return None, results
            continue
        prev = json.loads(out)
        results.append(prev)
    return prev, results


def check(final, results):
    prev = results[0] if BREAK == "check-stale-prev" and results else final
    if BREAK == "parallel":
        threads = [threading.Thread(target=run, args=(p, "CHECK", request(p, prev, "CHECK"))) for p in plugins]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return
    for p in (list(reversed(plugins)) if BREAK == "check-reverse" else plugins):
        run(p, "CHECK", request(p, prev, "CHECK"))


def delete(final):
    prev = final if v >= (0, 4, 0) and BREAK != "del-no-prev" else None
    order = plugins if BREAK == "del-forward" else list(reversed(plugins))
    kw = {"ifname": "eth1"} if BREAK == "change-ifname-on-del" else {}
    for p in order:
        run(p, "DEL", request(p, prev, "DEL"), **kw)


def gc_status():
    if v < (1, 1, 0) and BREAK != "gc-low-version":
        return
    for p in plugins:
        r = request(p, verb="STATUS")
        if BREAK == "status-with-prev":
            r["prevResult"] = {"cniVersion": version}
        run(p, "STATUS", r)
    if conf.get("disableGC") and BREAK != "gc-ignore-disable":
        return
    if BREAK == "gc-deletes-live":
        # Garbage collection done as DEL: the live attachment goes, the container keeps running.
        for p in reversed(plugins):
            run(p, "DEL", request(p, None, "DEL"))
    for p in plugins:
        r = request(p, verb="GC")
        r["cni.dev/valid-attachments"] = [] if BREAK == "gc-forget-live" else [{"containerID": cid, "ifname": "eth0"}]
        if BREAK == "gc-with-prev":
            r["prevResult"] = {"cniVersion": version}
        code, _ = run(p, "GC", r)
        if code != 0 and BREAK == "gc-stop-on-error":
            break


def cri_runtime():
    """Runs the pod the way a CRI runtime does for kubelet, and writes the stand-in's record."""
    record = {"format": "cni-conformance/cri-record/1", "endpoint": "broken.py",
              "runtime": {"name": "broken.py", "version": "0", "apiVersion": "v1"}, "pod": POD,
              "podIps": [], "calls": [], "netnsDir": "/run/netns", "netnsBefore": sorted(os.listdir("/run/netns"))
              if os.path.isdir("/run/netns") else []}

    def call(rpc, body, error=None):
        start = time.time_ns()
        out = body()
        record["calls"].append({"rpc": rpc, "startNs": start, "endNs": time.time_ns(), "error": error,
                                "notFound": False})
        return out

    subprocess.run(["ip", "netns", "add", ns], check=True)
    final, _ = call("RunPodSandbox", add)
    if final is None:
        record["calls"][-1]["error"] = "a plugin failed ADD"
        delete(final)
        subprocess.run(["ip", "netns", "del", ns], check=True)
    else:
        record["sandboxId"] = cid
        ips = [ip["address"].split("/")[0] for ip in final.get("ips", [])]
        if BREAK == "k8s-wrong-pod-ip":
            ips = ["10.99.99.99"]
        call("PodSandboxStatus", lambda: record.update(podIps=ips))
        if BREAK == "k8s-del-after-stop":
            call("StopPodSandbox", lambda: None)
            delete(final)
        else:
            def stop():
                if BREAK == "k8s-netns-gone-on-stop":
                    subprocess.run(["ip", "netns", "del", ns], check=True)
                delete(final)
            call("StopPodSandbox", stop)
        if BREAK != "k8s-netns-gone-on-stop":
            subprocess.run(["ip", "netns", "del", ns], check=True)
        call("RemovePodSandbox", lambda: None)
        left = BREAK == "k8s-sandbox-left"
        call("PodSandboxStatus", lambda: None, None if left else "NotFound")
        record["calls"][-1]["notFound"] = not left
        record["afterRemove"] = {"statusNotFound": not left, "listed": left,
                                 "netns": sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []}
        if left:
            record["afterRemove"]["statusAnswer"] = "the sandbox is still there (state 1)"
    with open(os.environ["CNI_CONFORMANCE_CRI_RECORD"], "w") as f:
        json.dump(record, f)
    sys.exit(0 if final is not None else 1)


if CRI:
    cri_runtime()
subprocess.run(["ip", "netns", "add", ns], check=True)
if BREAK == "check-before-add" and v >= (0, 4, 0) and not conf.get("disableCheck"):
    check({"cniVersion": version}, [])
final, results = add()
if BREAK == "new-netns-same-path" and final is not None:
    subprocess.run(["ip", "netns", "del", ns], check=True)
    subprocess.run(["ip", "netns", "add", ns], check=True)
if BREAK == "no-del-after-failure" and final is None:
    sys.exit(1)
can_check = (v >= (0, 4, 0) or BREAK == "check-old-version") and (
    not conf.get("disableCheck") or BREAK == "check-despite-disable")
if final is not None and can_check:
    check(final, results)
if final is not None:
    gc_status()
if BREAK == "del-after-netns-gone":
    subprocess.run(["ip", "netns", "del", ns], check=True)
if BREAK != "never-del":
    delete(final)
if BREAK != "del-after-netns-gone":
    subprocess.run(["ip", "netns", "del", ns], check=True)
sys.exit(0 if final is not None else 1)
