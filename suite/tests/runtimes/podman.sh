#!/bin/sh
# Podman (4.x, CNI network backend) as the runtime under test:
#   cni-conformance runtime -- sh suite/tests/runtimes/podman.sh
# Runs inside the suite's lab (private network and mount namespaces, private /run and
# /var/lib/cni). Everything podman stores goes under a scratch directory; the container is a
# rootfs holding /usr/bin/true and its libraries, so no image is pulled.
set -eu
here=$(dirname "$0")
. "$here/lab-cgroups.sh"
work=$(mktemp -d /tmp/cni-conformance-podman.XXXXXX)
had_parent=$(cgroup_parent_seen libpod_parent)
trap 'set +e; rm -rf "$work" 2>/dev/null; cgroup_parent_cleanup libpod_parent "$had_parent"' EXIT

make_rootfs "$work/rootfs" /usr/bin/true

# Point podman's CNI backend at the suite's conf and bin dirs.
cat > "$work/containers.conf" <<CONF
[network]
network_backend = "cni"
cni_plugin_dirs = ["$CNI_CONFORMANCE_BIN_DIR"]
network_config_dir = "$CNI_CONFORMANCE_CONF_DIR"
CONF
export CONTAINERS_CONF="$work/containers.conf"

podman --root "$work/storage" --runroot "$work/run" --storage-driver vfs \
  --runtime runc --cgroup-manager=cgroupfs --events-backend file \
  --network-config-dir "$CNI_CONFORMANCE_CONF_DIR" \
  run --rm --network "$CNI_CONFORMANCE_NETWORK" \
  --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
  --rootfs "$work/rootfs" /usr/bin/true
