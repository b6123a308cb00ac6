#!/usr/bin/env bash
# Wall time of a --vm run of Debian's upstream bridge under TCG, split into build (kernel lookup +
# initramfs, cached by content), boot (QEMU start to the suite starting in the guest), suite and
# total, with the guest's CPU use and QEMU's CPU time. One run with a cold initramfs cache, then
# RUNS warm runs and their medians; says whether the median warm total meets the 60 s target.
#   vm/bench.sh [PLUGIN] [RUNS] [-- EXTRA SUITE ARGS]   (default /usr/lib/cni/bridge, 3 warm runs)
# The host's load average is printed with each run: the guest is CPU-bound, so other work on the
# machine slows it in proportion. QEMU CPU / vCPUs is about what the run takes on idle cores.
set -euo pipefail
cd "$(dirname "$0")/.."
plugin="${1:-/usr/lib/cni/bridge}"
runs="${2:-3}"
shift $(( $# < 2 ? $# : 2 ))
[ "${1:-}" = "--" ] && shift
suite=target/release/cni-conformance
[ -x "$suite" ] || cargo build --release -p cni-conformance >/dev/null 2>&1
cache="${XDG_CACHE_HOME:-$HOME/.cache}/cni-conformance"
results=$(mktemp)
trap 'rm -f "$results"' EXIT

# field NAME LINE: the number before " s" after "NAME " in the suite's timing line.
field() { sed -n "s/.*$1 \([0-9.]*\) s.*/\1/p" <<<"$2"; }

one() {
    local label="$1" load line
    shift
    load=$(cut -d' ' -f1 /proc/loadavg)
    line=$("$suite" --vm --vm-accel tcg "$plugin" "$@" 2>&1 >/dev/null | grep '^vm: kernel' || true)
    if [ -z "$line" ]; then
        echo "$label: no timing line (the run failed)"
        return
    fi
    printf '%-6s load %-5s %s\n' "$label" "$load" "${line#*initramfs }"
    [ "$label" = cold ] || printf '%s %s %s %s %s\n' "$(field build "$line")" "$(field boot "$line")" \
        "$(field suite "$line")" "$(field total "$line")" "$(field 'QEMU CPU' "$line")" >>"$results"
}

median() { sort -n | awk '{v[NR]=$1} END{if (NR==0) print "?"; else if (NR%2) print v[(NR+1)/2]; else printf "%.1f\n", (v[NR/2]+v[NR/2+1])/2}'; }

echo "cni-conformance --vm $plugin $* (TCG, $(nproc) host cores)"
rm -rf "$cache/initramfs" "$cache/file-digests"
one cold "$@"
for i in $(seq 1 "$runs"); do
    one "warm$i" "$@"
done
[ -s "$results" ] || { echo "no warm run finished"; exit 1; }
b=$(cut -d' ' -f1 "$results" | median)
o=$(cut -d' ' -f2 "$results" | median)
s=$(cut -d' ' -f3 "$results" | median)
t=$(cut -d' ' -f4 "$results" | median)
c=$(cut -d' ' -f5 "$results" | median)
echo "median of $(wc -l <"$results") warm runs: build $b s, boot $o s, suite $s s, total $t s; QEMU CPU $c s"
if awk -v t="$t" 'BEGIN{exit !(t<=60)}'; then
    echo "median warm total ${t} s: within the 60 s target"
else
    echo "median warm total ${t} s: over the 60 s target"
fi
