#!/usr/bin/env bash
# Wall time of a --vm run of Debian's upstream bridge under TCG on 2 vCPUs, split into build
# (kernel lookup + initramfs, cached by content), boot (QEMU start to the suite starting in the
# guest) and suite. Runs once with a cold initramfs cache and then warm, and says whether the
# warm total meets the target of 60 s.
#   vm/bench.sh [PLUGIN] [RUNS]      (default /usr/lib/cni/bridge, 2 warm runs)
set -euo pipefail
cd "$(dirname "$0")/.."
plugin="${1:-/usr/lib/cni/bridge}"
runs="${2:-2}"
suite=target/release/cni-conformance
[ -x "$suite" ] || cargo build --release -p cni-conformance >/dev/null 2>&1
cache="${XDG_CACHE_HOME:-$HOME/.cache}/cni-conformance"

one() {
    local label="$1" start end line
    start=$(date +%s.%N)
    line=$("$suite" --vm --vm-accel tcg "$plugin" 2>&1 >/dev/null | grep '^vm: kernel' || true)
    end=$(date +%s.%N)
    printf '%-6s %s | wall %.1f s\n' "$label" "${line#vm: }" "$(awk -v a="$start" -v b="$end" 'BEGIN{print b-a}')"
    echo "$line" | sed -n 's/.*total \([0-9.]*\) s.*/\1/p'
}

echo "cni-conformance --vm $plugin (TCG, $(nproc) host cores; load: $(cut -d' ' -f1-3 /proc/loadavg))"
rm -rf "$cache/initramfs" "$cache/file-digests"
cold=$(one cold)
echo "$cold" | head -n 1
best=""
for i in $(seq 1 "$runs"); do
    warm=$(one "warm$i")
    echo "$warm" | head -n 1
    t=$(echo "$warm" | tail -n 1)
    if [ -z "$best" ] || awk -v t="$t" -v b="$best" 'BEGIN{exit !(t<b)}'; then best=$t; fi
done
if [ -n "$best" ] && awk -v b="$best" 'BEGIN{exit !(b<=60)}'; then
    echo "best warm total ${best} s: within the 60 s target"
else
    echo "best warm total ${best:-?} s: over the 60 s target"
fi
