#!/bin/sh
# PID 1 of the cni-conformance guest (busybox sh). Packed into the initramfs by suite/src/vm.
# Mounts the kernel file systems, loads the modules named in /etc/cni-conformance/modules.load,
# runs the suite with the arguments in /etc/cni-conformance/args (one per line), and speaks the
# channel protocol on ttyS1 (see suite/src/vm/guest.rs):
#   B <uptime>        init started
#   M <uptime>        modules loaded, suite starting
#   P <line>          a line the suite wrote on stderr
#   X <status> <uptime>   the suite's exit status
#   J ... E           the suite's stdout (the JSON report) between a line "J" and a line "E"
# The kernel console (ttyS0) stays separate. The guest powers off by rebooting (QEMU runs with
# -no-reboot, so a reboot ends it).
/bin/busybox --install -s /bin
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /run /tmp /var/lib/cni /sys/fs/cgroup
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# /run and /tmp stay on the root file system (already in memory): files the run needs may live
# there on the host (a plugin under /tmp), and a mount would hide them.
chmod 1777 /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
[ -e /var/run ] || ln -s /run /var/run
mkdir -p /run/netns
hostname cni-conformance-vm
ip link set lo up

chan=/dev/ttyS1
stty -F "$chan" raw -echo 2>/dev/null
exec 3>"$chan"
say() { printf '%s\n' "$*" >&3; }
up() { cut -d' ' -f1 /proc/uptime; }

say "B $(up)"
if [ -f /etc/cni-conformance/modules.load ]; then
    while read -r m; do
        [ -n "$m" ] && { modprobe "$m" 2>/dev/null || echo "cni-conformance vm: cannot load $m"; }
    done < /etc/cni-conformance/modules.load
fi
say "M $(up)"
say "C $(head -n 1 /proc/stat)"

# The first line of the argument file is the host's working directory: relative paths in the
# arguments mean the same here.
{
    IFS= read -r cwd
    set --
    while IFS= read -r a; do set -- "$@" "$a"; done
} < /etc/cni-conformance/args

# With /etc/cni-conformance/hostroot (runtime --vm), the host's / comes in read-only over 9p under
# an overlay whose writable layer is guest memory; the suite (the host path in that file) runs
# chrooted there, so the runtime command finds whatever it runs on the host. Fresh proc, sys,
# dev and /run: the guest's own, never the host's. The overlay is then moved onto / (as
# switch_root does), because a process that enters a mount namespace (the suite's labs) gets the
# namespace's topmost root, not a chroot; this init keeps its own root (the initramfs) and its
# working directory is the overlay's root, which the suite is chrooted to.
share_root() {
    r=/mnt/root
    mkdir -p /mnt/host /mnt/rw "$r" &&
        mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /mnt/host &&
        mount -t tmpfs -o mode=755 tmpfs /mnt/rw &&
        mkdir -p /mnt/rw/upper /mnt/rw/work &&
        mount -t overlay -o lowerdir=/mnt/host,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work overlay "$r" &&
        mount -t proc proc "$r/proc" &&
        mount -t sysfs sysfs "$r/sys" &&
        mount -t devtmpfs devtmpfs "$r/dev" &&
        mkdir -p "$r/dev/pts" "$r/dev/shm" &&
        mount -t devpts devpts "$r/dev/pts" &&
        mount -t tmpfs tmpfs "$r/dev/shm" &&
        mount -t tmpfs -o mode=755 tmpfs "$r/run" &&
        mkdir -p "$r/run/netns" || return 1
    mount -t cgroup2 cgroup2 "$r/sys/fs/cgroup" 2>/dev/null
    # The guest kernel's modules where the host's modprobe looks for them.
    rel=$(uname -r)
    if [ -d "/lib/modules/$rel" ]; then
        mkdir -p "$r/lib/modules/$rel" && mount --bind "/lib/modules/$rel" "$r/lib/modules/$rel"
    fi
    cd "$r" && mount --move "$r" /
}

suite=/opt/cni-conformance/bin/cni-conformance
if [ -f /etc/cni-conformance/hostroot ]; then
    IFS= read -r suite < /etc/cni-conformance/hostroot
    if ! share_root >/tmp/share.err 2>&1; then
        say "P cni-conformance: cannot mount the host's files in the VM: $(tail -n 1 /tmp/share.err)"
        say "X 2 $(up)"
        say "J"
        say ""
        say "E"
        reboot -f
    fi
    run() {
        (
            while IFS= read -r kv; do export "$kv"; done < /etc/cni-conformance/env
            exec chroot . /bin/sh -c 'cd "$1" || exit 2; shift; exec "$@"' sh "$cwd" "$suite" "$@"
        )
    }
else
    mkdir -p "$cwd" && cd "$cwd"
    run() {
        (
            while IFS= read -r kv; do export "$kv"; done < /etc/cni-conformance/env
            exec "$suite" "$@"
        )
    }
fi
{ run "$@" 2>&1 >/tmp/report.out; echo $? >/tmp/status; } |
    while IFS= read -r line; do printf 'P %s\n' "$line" >&3; done
say "C $(head -n 1 /proc/stat)"
say "X $(cat /tmp/status) $(up)"
say "J"
cat /tmp/report.out >&3
say ""
say "E"
sync
reboot -f
