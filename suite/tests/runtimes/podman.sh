#!/bin/sh
# Podman (4.x, CNI network backend) as the runtime under test:
#   cni-conformance runtime -- sh suite/tests/runtimes/podman.sh
# Runs inside the suite's lab (private network and mount namespaces, private /run and
# /var/lib/cni). Everything podman stores goes under a scratch directory; the container is a
# rootfs holding /usr/bin/true and its libraries, so no image is pulled.
set -eu
work=$(mktemp -d /tmp/cni-conformance-podman.XXXXXX)
# runc makes libpod_parent cgroups in the machine's cgroup tree; remove them afterwards if this run
# made them (rmdir only removes empty, unused cgroups).
had_parent=no
[ -d /sys/fs/cgroup/memory/libpod_parent ] || [ -d /sys/fs/cgroup/libpod_parent ] && had_parent=yes
cleanup() {
  rm -rf "$work" 2>/dev/null || true
  if [ "$had_parent" = no ]; then
    for d in /sys/fs/cgroup/*/libpod_parent /sys/fs/cgroup/libpod_parent; do
      [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
  fi
  true
}
trap cleanup EXIT

# The lab mounts a fresh sysfs, which hides the cgroup file systems runc needs. Mount them again
# as the machine has them (v1 controllers or v2), inside the lab's private mount namespace only.
# mountinfo still lists the hidden mounts: mount point is field 5, then "-", type, source, options.
if [ ! -e /sys/fs/cgroup/cgroup.controllers ] && [ ! -d /sys/fs/cgroup/memory ]; then
  grep ' /sys/fs/cgroup' /proc/self/mountinfo | while read -r line; do
    mp=$(echo "$line" | cut -d' ' -f5)
    rest=${line#* - }
    fstype=${rest%% *}
    opts=${rest##* }
    case $fstype in
      tmpfs) mount -t tmpfs -o mode=755 tmpfs "$mp" ;;
      cgroup) mkdir -p "$mp"; mount -t cgroup -o "$opts" cgroup "$mp" ;;
      cgroup2) mkdir -p "$mp"; mount -t cgroup2 none "$mp" ;;
    esac
  done
fi

# The container's root file system: true(1) and the libraries it needs.
rootfs=$work/rootfs
mkdir -p "$rootfs/usr/bin" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/etc"
cp /usr/bin/true "$rootfs/usr/bin/true"
for lib in $(ldd /usr/bin/true | grep -o '/[^ ]*'); do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done

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
  --rootfs "$rootfs" /usr/bin/true
