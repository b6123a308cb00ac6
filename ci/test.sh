#!/bin/sh
# The project's test command: installs what the tests need when it is missing, then runs
# `cargo test` for the whole workspace.
#   sh ci/test.sh [ARGS...]        ARGS go to cargo test (e.g. -p cni-conformance --test cli)
#   sh ci/test.sh --deps-only      only install what is missing
# Installing needs root (apt-get). The packages' services are not started: when the machine has
# no /usr/sbin/policy-rc.d, one that refuses every start is put there for the install only.
set -eu
cd "$(dirname "$0")/.."

# Upstream plugins are the suite's peers; iproute2/nftables/iptables let tests look at the machine
# from outside the suite; python3 runs the mutant plugins; util-linux gives unshare/setpriv;
# podman, containerd, runc and docker.io are the real runtimes runtime mode is tested against;
# --vm needs QEMU and busybox (the guest's init), its kernel comes from apt at run time;
# dnsmasq-base is the DHCP server of the dhcp profile (the binary only: the dnsmasq package starts
# a service).
# The skip switches the tests honour leave out the packages they stand for.
PACKAGES="iproute2 nftables iptables python3 util-linux procps"
[ "${CNI_CONFORMANCE_SKIP_UPSTREAM:-}" = 1 ] || PACKAGES="$PACKAGES containernetworking-plugins dnsmasq-base"
[ "${CNI_CONFORMANCE_SKIP_RUNTIMES:-}" = 1 ] || PACKAGES="$PACKAGES podman containerd runc docker.io"
[ "${CNI_CONFORMANCE_SKIP_VM:-}" = 1 ] || PACKAGES="$PACKAGES qemu-system-x86 busybox-static"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "ci/test.sh: missing packages:$missing; install them (apt-get install$missing) or run as root" >&2
    exit 2
  fi
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    guard=/usr/sbin/policy-rc.d
  fi
  trap '[ -z "$guard" ] || rm -f "$guard"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  [ -z "$guard" ] || rm -f "$guard"
  trap - EXIT
fi

if [ "${1:-}" = "--deps-only" ]; then
  exit 0
fi
exec cargo test --workspace --locked "$@"
