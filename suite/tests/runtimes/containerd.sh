#!/bin/sh
# containerd (1.6, `ctr run --cni`) as the runtime under test:
#   cni-conformance runtime -- sh suite/tests/runtimes/containerd.sh
# Runs inside the suite's lab (private network and mount namespaces). A containerd daemon is
# started by hand with its own root, state and socket; ctr reads /etc/cni/net.d and /opt/cni/bin,
# so the suite's conf and bin dirs are bind-mounted there — in the lab's private mount namespace,
# never on the machine. The container is a rootfs holding sleep(1), so no image is pulled.
set -eu
here=$(dirname "$0")
. "$here/lab-cgroups.sh"
work=$(mktemp -d /tmp/cni-conformance-containerd.XXXXXX)
ns=cniconformance
had_parent=$(cgroup_parent_seen $ns)
id=cni-conformance-$$
sock=$work/containerd.sock
daemon=
cleanup() {
  set +e
  if [ -n "$daemon" ]; then
    # When ctr run fails (a CNI error), the task is left in the created state: remove it, so its
    # shim and runc init do not outlive the run.
    ctr --address "$sock" -n $ns tasks delete --force $id >/dev/null 2>&1
    ctr --address "$sock" -n $ns containers delete $id >/dev/null 2>&1
    for pidfile in "$work"/state/io.containerd.runtime.v2.task/$ns/*/shim.pid; do
      [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
    done
    kill "$daemon" 2>/dev/null
    wait "$daemon" 2>/dev/null
  fi
  rm -rf "$work" 2>/dev/null
  cgroup_parent_cleanup $ns "$had_parent"
}
trap cleanup EXIT

mkdir -p /etc/cni/net.d
mount --bind "$CNI_CONFORMANCE_CONF_DIR" /etc/cni/net.d
mount -t tmpfs tmpfs /opt
mkdir -p /opt/cni/bin
mount --bind "$CNI_CONFORMANCE_BIN_DIR" /opt/cni/bin

make_rootfs "$work/rootfs" /usr/bin/sleep

cat > "$work/config.toml" <<CONF
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
CONF
containerd --config "$work/config.toml" --address "$sock" \
  --root "$work/root" --state "$work/state" >"$work/containerd.log" 2>&1 &
daemon=$!
i=0
until ctr --address "$sock" version >/dev/null 2>&1; do
  i=$((i + 1))
  if [ $i -gt 100 ]; then echo "containerd did not start:" >&2; cat "$work/containerd.log" >&2; exit 2; fi
  sleep 0.1
done

ctr --address "$sock" -n $ns run --rm --cni --rootfs "$work/rootfs" \
  $id /usr/bin/sleep 0.2
