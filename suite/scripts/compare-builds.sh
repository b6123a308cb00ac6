#!/bin/sh
# Compares the run time of two builds of the suite side by side, interleaved, on the same plugins:
#   suite/scripts/compare-builds.sh BASE_REV [ROUNDS] [PLUGIN...]
# BASE_REV is built from a temporary git worktree (target/compare-base, reused across calls); the
# working tree's release build is the other side. Each round runs every plugin once with each
# build, alternating which goes first; the script prints per plugin the median wall time of each
# build and their ratio. Only the cases both builds have are run (a `--filter` of their common
# ids), so a grown catalogue does not count as a slower build. Default plugins: the reference
# bridge and upstream bridge.
set -eu
base_rev=${1:?usage: compare-builds.sh BASE_REV [ROUNDS] [PLUGIN...]}
rounds=${2:-5}
shift; [ $# -gt 0 ] && shift
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo build --release --quiet -p cni-conformance -p cni-reference-plugins
new=$root/target/release/cni-conformance

tree=$root/target/compare-base/tree
if [ ! -d "$tree" ] || [ "$(git -C "$tree" rev-parse HEAD)" != "$(git rev-parse "$base_rev")" ]; then
  git worktree remove --force "$tree" 2>/dev/null || rm -rf "$tree"
  git worktree add --detach "$tree" "$base_rev" >/dev/null
fi
(cd "$tree" && cargo build --release --quiet -p cni-conformance --target-dir "$root/target/compare-base/target")
old=$root/target/compare-base/target/release/cni-conformance

# The ids both builds list, as one anchored alternation for --filter.
common=$("$old" --list | awk '{print $1}' | sort >"$root/target/compare-base/old.ids"
  "$new" --list | awk '{print $1}' | sort | comm -12 - "$root/target/compare-base/old.ids" | paste -sd'|')
[ -n "$common" ] || { echo "the two builds share no case id" >&2; exit 2; }
echo "cases both builds have: $(echo "$common" | tr '|' '\n' | wc -l) (base $(wc -l <"$root/target/compare-base/old.ids"), this $("$new" --list | wc -l))"

if [ $# -eq 0 ]; then
  set -- "$root/target/release/bridge" /usr/lib/cni/bridge
fi

# time_run BINARY PLUGIN: wall seconds of one judged run (its exit status does not matter here).
time_run() {
  start=$(date +%s.%N)
  "$1" "$2" --filter "^($common)\$" >/dev/null 2>&1 || true
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN {print b - a}'
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

printf '%-40s %10s %10s %7s\n' plugin "base (s)" "this (s)" ratio
for plugin in "$@"; do
  : >"$root/target/compare-base/old.times"
  : >"$root/target/compare-base/new.times"
  i=0
  while [ $i -lt "$rounds" ]; do
    if [ $((i % 2)) -eq 0 ]; then
      time_run "$old" "$plugin" >>"$root/target/compare-base/old.times"
      time_run "$new" "$plugin" >>"$root/target/compare-base/new.times"
    else
      time_run "$new" "$plugin" >>"$root/target/compare-base/new.times"
      time_run "$old" "$plugin" >>"$root/target/compare-base/old.times"
    fi
    i=$((i + 1))
  done
  o=$(median <"$root/target/compare-base/old.times")
  n=$(median <"$root/target/compare-base/new.times")
  printf '%-40s %10.2f %10.2f %7.2f\n' "$plugin" "$o" "$n" "$(awk -v o="$o" -v n="$n" 'BEGIN {print n / o}')"
done
