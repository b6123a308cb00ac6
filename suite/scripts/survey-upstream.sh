#!/usr/bin/env bash
# Judges every CNI plugin in a directory (default: Debian's /usr/lib/cni) with the built-in
# profiles and prints one line each: exit status, case counts, wall time, and the ids of the
# failed and warned cases. Ends with the catalogue's case count by area and level.
#
#   suite/scripts/survey-upstream.sh [DIR] [-- extra cni-conformance options]
#
# Needs root (or user namespaces) like the suite itself, and python3 to read the JSON reports.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
suite="${CNI_CONFORMANCE:-$here/target/release/cni-conformance}"
dir="${1:-/usr/lib/cni}"
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
[ -x "$suite" ] || { echo "build the suite first: cargo build --release" >&2; exit 2; }
[ -d "$dir" ] || { echo "no plugin directory $dir" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

printf '%-12s %4s %5s %5s %5s %5s %8s  %s\n' plugin exit pass warn fail skip seconds "findings (fail: / warn:)"
for plugin in "$dir"/*; do
  [ -f "$plugin" ] && [ -x "$plugin" ] || continue
  name="$(basename "$plugin")"
  start=$(date +%s.%N)
  status=0
  "$suite" --format json "$@" "$plugin" >"$tmp/$name.json" 2>"$tmp/$name.err" || status=$?
  end=$(date +%s.%N)
  secs=$(python3 -c "print(f'{$end - $start:.1f}')")
  if [ "$status" -eq 2 ]; then
    printf '%-12s %4s %5s %5s %5s %5s %8s  %s\n' "$name" 2 - - - - "$secs" "not judged: $(tr '\n' ' ' <"$tmp/$name.err" | cut -c1-100)"
    continue
  fi
  python3 - "$tmp/$name.json" "$name" "$status" "$secs" <<'PY'
import json, sys
path, name, status, secs = sys.argv[1:]
doc = json.load(open(path))
count = {"pass": 0, "warn": 0, "fail": 0, "skip": 0}
fails, warns = [], []
for c in doc["cases"]:
    count[c["status"]] = count.get(c["status"], 0) + 1
    if c["status"] == "fail":
        fails.append(f'{c["id"]}[{c["level"]}]')
    elif c["status"] == "warn":
        warns.append(c["id"])
notes = []
if fails:
    notes.append("fail: " + " ".join(fails))
if warns:
    notes.append("warn: " + " ".join(warns))
print(f'{name:<12} {status:>4} {count["pass"]:>5} {count["warn"]:>5} {count["fail"]:>5} {count["skip"]:>5} {secs:>8}  {" / ".join(notes)}')
PY
done

echo
echo "catalogue by area and level:"
"$suite" --list | awk '{ split($1, a, "/"); n[a[1] " " $2]++; areas[a[1]] = 1 }
  END { for (k in areas) printf "  %-13s must %2d  should %2d\n", k, n[k " must"], n[k " should"] }' | sort
"$suite" --list | awk '{ t[$2]++ } END { printf "  %-13s must %2d  should %2d\n", "total", t["must"], t["should"] }'

