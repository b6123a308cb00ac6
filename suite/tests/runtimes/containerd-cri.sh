#!/bin/sh
# containerd's CRI plugin (Debian's containerd 1.6) as the runtime under test, driven the way
# kubelet drives it: by the suite's kubelet stand-in over CRI v1.
#   cni-conformance runtime -- sh suite/tests/runtimes/containerd-cri.sh
# Runs inside the suite's lab (private network and mount namespaces). Every piece of daemon
# state (root, state, socket, the pause image and its tarball) lives on a tmpfs this script
# mounts inside the lab, so nothing reaches the machine, and overlayfs snapshots get a non-overlay
# upper layer. The CRI plugin reads the suite's conf dir and a bin dir holding the suite's
# plugins plus loopback (containerd's CRI always brings the pod's lo up with the loopback plugin).
# The sandbox ("pause") image is built here from busybox-static and imported: no registry pull.
# Extra arguments are passed to `cni-conformance cri`.
set -eu
here=$(dirname "$0")
. "$here/lab-cgroups.sh"
suite=${CNI_CONFORMANCE_SUITE:?run me under cni-conformance runtime}
cgroup=cniconformance-cri
had_parent=$(cgroup_parent_seen $cgroup)
work=$(mktemp -d /tmp/cni-conformance-cri.XXXXXX)
mount -t tmpfs -o mode=755 tmpfs "$work"
sock=$work/containerd.sock
daemon=
cleanup() {
  set +e
  if [ -n "$daemon" ]; then
    # A stand-in that was killed leaves its sandbox: stop what runs, then the shims and the daemon.
    for task in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$sock" -n k8s.io tasks kill -s KILL "$task" >/dev/null 2>&1
      ctr --address "$sock" -n k8s.io tasks delete -f "$task" >/dev/null 2>&1
    done
    for pidfile in "$work"/state/io.containerd.runtime.v2.task/k8s.io/*/shim.pid; do
      [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
    done
    kill "$daemon" 2>/dev/null
    wait "$daemon" 2>/dev/null
  fi
  # Snapshot and sandbox mounts below the tmpfs go with it.
  umount -R "$work" 2>/dev/null || umount -l "$work" 2>/dev/null
  rmdir "$work" 2>/dev/null
  cgroup_parent_cleanup $cgroup "$had_parent"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

# The CRI plugin's streaming server listens on 127.0.0.1 in the lab.
ip link set lo up

# bin dir: the suite's recording plugins (and their sidecar) plus loopback.
mkdir -p "$work/bin"
for f in "$CNI_CONFORMANCE_BIN_DIR"/* "$CNI_CONFORMANCE_BIN_DIR"/.[!.]*; do
  [ -e "$f" ] && ln -s "$f" "$work/bin/$(basename "$f")"
done
[ -e "$work/bin/loopback" ] || ln -s /usr/lib/cni/loopback "$work/bin/loopback"

# The pause image: one layer holding busybox as /bin/sleep, as a docker-archive tarball.
image=docker.io/cni-conformance/pause:1
mkdir -p "$work/image/rootfs/bin"
cp /bin/busybox "$work/image/rootfs/bin/sleep"
(cd "$work/image/rootfs" && tar --numeric-owner --owner=0 --group=0 -cf ../layer.tar .)
diff_id=$(sha256sum "$work/image/layer.tar" | cut -d' ' -f1)
cat > "$work/image/config.json" <<JSON
{"architecture":"$(dpkg --print-architecture)","os":"linux","config":{"Entrypoint":["/bin/sleep","2147483647"]},"rootfs":{"type":"layers","diff_ids":["sha256:$diff_id"]}}
JSON
echo "[{\"Config\":\"config.json\",\"RepoTags\":[\"$image\"],\"Layers\":[\"layer.tar\"]}]" > "$work/image/manifest.json"
(cd "$work/image" && tar -cf ../pause.tar manifest.json config.json layer.tar)

cat > "$work/config.toml" <<CONF
version = 2
root = "$work/root"
state = "$work/state"
[grpc]
  address = "$sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$work/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$image"
  disable_apparmor = true
  # Lowering oom_score_adj (the sandbox asks for -998) needs CAP_SYS_RESOURCE, which a sealed
  # lab or a container may not have: keep it at containerd's own.
  restrict_oom_score_adj = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$work/bin"
    conf_dir = "$CNI_CONFORMANCE_CONF_DIR"
    max_conf_num = 1
CONF
containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
daemon=$!
i=0
until ctr --address "$sock" version >/dev/null 2>&1; do
  i=$((i + 1))
  if [ $i -gt 100 ]; then echo "containerd did not start:" >&2; tail -n 20 "$work/containerd.log" >&2; exit 2; fi
  sleep 0.1
done
ctr --address "$sock" -n k8s.io images import --snapshotter overlayfs "$work/pause.tar" >/dev/null

status=0
"$suite" cri --endpoint "unix://$sock" --cgroup-parent "/$cgroup" "$@" || status=$?
if [ "$status" != 0 ]; then
  echo "containerd's log ends:" >&2
  grep -i -E 'level=(error|warning)' "$work/containerd.log" | tail -n 5 >&2
fi
exit $status
