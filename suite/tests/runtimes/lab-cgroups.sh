# Sourced by the real-runtime scripts. The suite's lab mounts a fresh sysfs, which hides the
# cgroup file systems runc needs: mount them again as the machine has them (v1 controllers or
# v2), inside the lab's private mount namespace only. mountinfo still lists the hidden mounts:
# the mount point is field 5, then after " - " come the type, the source and the options.
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

# cgroup_parent_cleanup NAME: remove the (empty, unused) cgroup NAME from every hierarchy, unless
# it existed when the script started (call cgroup_parent_seen NAME first).
cgroup_parent_seen() {
  if [ -d "/sys/fs/cgroup/memory/$1" ] || [ -d "/sys/fs/cgroup/$1" ]; then echo yes; else echo no; fi
}
cgroup_parent_cleanup() {
  [ "$2" = no ] || return 0
  for d in /sys/fs/cgroup/*/"$1" /sys/fs/cgroup/"$1"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  return 0
}

# make_rootfs DIR PROGRAM...: a root file system holding the programs and their libraries.
make_rootfs() {
  root=$1; shift
  mkdir -p "$root/proc" "$root/sys" "$root/dev" "$root/etc" "$root/tmp"
  for prog in "$@"; do
    mkdir -p "$root$(dirname "$prog")"
    cp "$prog" "$root$prog"
    for lib in $(ldd "$prog" | grep -o '/[^ ]*'); do
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
  done
}
