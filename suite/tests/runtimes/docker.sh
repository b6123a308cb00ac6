#!/bin/sh
# Docker with CNI, the long-documented way: Docker makes the container with no network
# (`docker run --network=none`), and a CNI runner attaches its network namespace
# (/proc/<pid>/ns/net) to the network, here `cni-conformance invoke`; DEL before `docker rm -f`.
#   cni-conformance runtime -- sh suite/tests/runtimes/docker.sh
# Runs inside the suite's lab (private network and mount namespaces). dockerd (Debian's docker.io)
# is started by hand with every piece of its state (data root, exec root, socket, pid file, the
# containerd it starts, the client's config) on a tmpfs this script mounts in the lab; no bridge,
# no iptables. The image is imported from a rootfs holding busybox-static: no registry pull.
set -eu
here=$(dirname "$0")
. "$here/lab-cgroups.sh"
suite=${CNI_CONFORMANCE_SUITE:?run me under cni-conformance runtime}
cgroup=cniconformance-docker
had_parent=$(cgroup_parent_seen $cgroup)
work=$(mktemp -d /tmp/cni-conformance-docker.XXXXXX)
mount -t tmpfs -o mode=755 tmpfs "$work"
# Debian's client, whatever else is on PATH.
docker_bin=/usr/bin/docker
[ -x "$docker_bin" ] || docker_bin=docker
export DOCKER_CONFIG="$work/client"
docker() { "$docker_bin" -H "unix://$work/docker.sock" "$@"; }
name=cni-conformance-$$
daemon=
cleanup() {
  set +e
  if [ -n "$daemon" ]; then
    docker rm -f "$name" >/dev/null 2>&1
    kill "$daemon" 2>/dev/null
    # dockerd stops the containerd it started, and that one its shims.
    wait "$daemon" 2>/dev/null
  fi
  umount -R "$work" 2>/dev/null || umount -l "$work" 2>/dev/null
  rmdir "$work" 2>/dev/null
  cgroup_parent_cleanup $cgroup "$had_parent"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

echo '{}' > "$work/daemon.json"
dockerd --config-file "$work/daemon.json" --data-root "$work/data" --exec-root "$work/exec" \
  -H "unix://$work/docker.sock" --pidfile "$work/docker.pid" \
  --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
  --storage-driver overlay2 --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$cgroup" \
  >"$work/dockerd.log" 2>&1 &
daemon=$!
i=0
until docker version >/dev/null 2>&1; do
  i=$((i + 1))
  if [ $i -gt 200 ]; then echo "dockerd did not start:" >&2; tail -n 20 "$work/dockerd.log" >&2; exit 2; fi
  sleep 0.1
done

# The image: busybox as /bin/sleep.
mkdir -p "$work/rootfs/bin"
cp /bin/busybox "$work/rootfs/bin/sleep"
tar --numeric-owner --owner=0 --group=0 -C "$work/rootfs" -cf - . | docker import - cni-conformance/sleep:1 >/dev/null

docker run -d --network=none --name "$name" cni-conformance/sleep:1 /bin/sleep 2147483647 >/dev/null
pid=$(docker inspect -f '{{.State.Pid}}' "$name")
cid=$(docker inspect -f '{{.Id}}' "$name")

conf=$(ls "$CNI_CONFORMANCE_CONF_DIR"/*.conflist | head -n 1)
inv() {
  verb=$1; shift
  "$suite" invoke "$verb" --config "$conf" --cni-path "$CNI_CONFORMANCE_BIN_DIR" \
    --container-id "$cid" --netns "/proc/$pid/ns/net" --ifname eth0 "$@"
}
status=0
inv add >/dev/null || status=1
# DEL always (also after a failed ADD), while the container and so its netns still exist.
inv del || status=1
docker rm -f "$name" >/dev/null
exit $status
