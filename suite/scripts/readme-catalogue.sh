#!/bin/sh
# Rewrites the catalogue table of README.md from `cni-conformance --list`: the lines between
# `<!-- catalogue begin ... -->` and `<!-- catalogue end -->` become one row per area, in catalogue
# order, with its must and should counts, then the total. An area already in the table keeps its
# "what it judges" text; a new area gets a TODO to replace. suite/tests/readme.rs fails while the
# table and --list disagree (or a TODO is left).
#
#   suite/scripts/readme-catalogue.sh        (after cargo build --release)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
suite=${CNI_CONFORMANCE:-$root/target/release/cni-conformance}
readme=$root/README.md
[ -x "$suite" ] || { echo "build the suite first: cargo build --release" >&2; exit 2; }
grep -q '^<!-- catalogue begin' "$readme" && grep -q '^<!-- catalogue end -->' "$readme" ||
  { echo "README.md has no catalogue markers" >&2; exit 2; }

list=$(mktemp)
new=$(mktemp)
trap 'rm -f "$list" "$new"' EXIT
"$suite" --list >"$list"

awk -v list="$list" '
  BEGIN {
    while ((getline line < list) > 0) {
      split(line, f, " "); split(f[1], id, "/"); area = id[1]; level = f[2]
      if (!(area in seen)) { seen[area] = 1; order[++n] = area }
      count[area, level]++; total[level]++
    }
  }
  # The description of an existing row: everything after its fourth "|", trimmed.
  function what(row,   i) {
    for (i = 0; i < 4; i++) row = substr(row, index(row, "|") + 1)
    sub(/[ \t]*\|[ \t]*$/, "", row); sub(/^[ \t]+/, "", row)
    return row
  }
  function emit(   i, a, d) {
    print "| area | must | should | what it judges |"
    print "|---|---|---|---|"
    for (i = 1; i <= n; i++) {
      a = order[i]
      d = (a in desc) ? desc[a] : "TODO: what the " a " cases judge"
      printf "| `%s` | %d | %d | %s |\n", a, count[a, "must"], count[a, "should"], d
    }
    printf "| total | %d | %d | %d cases |\n", total["must"], total["should"], total["must"] + total["should"]
  }
  /^<!-- catalogue begin/ { print; inside = 1; next }
  inside && /^<!-- catalogue end -->/ { emit(); inside = 0; print; next }
  inside {
    if ($0 ~ /^\| `/) { split($0, c, "|"); a = c[2]; gsub(/[` \t]/, "", a); desc[a] = what($0) }
    next
  }
  { print }
' "$readme" >"$new"
cat "$new" >"$readme"
echo "README.md: catalogue table rewritten from $suite --list"
