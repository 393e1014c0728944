#!/usr/bin/env bash
# The quick configuration from empty results at two commits, one after the other on this
# machine, with the same settings: wall time, jobs, and the jobs' own wall times from their
# benchmark files. Ratios only are meaningful (a shared machine).
#
#   bash bench/bench_quick.sh BEFORE_COMMIT [AFTER_COMMIT=HEAD] [CORES=2] > docs/benchmarks/quick-cpu.md
#
# Each commit is checked out with `git worktree` into a temporary folder and run there with the
# Python environment of the caller (snakemake on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=${1:?commit to compare against}
AFTER=${2:-HEAD}
CORES=${3:-2}
TMP=$(mktemp -d)
trap 'git worktree remove --force "$TMP/before" 2>/dev/null; git worktree remove --force "$TMP/after" 2>/dev/null; rm -rf "$TMP"' EXIT

run() {  # name commit
  local dir="$TMP/$1"
  git worktree add -q --detach "$dir" "$2"
  local jobs_quick jobs_full
  jobs_full=$(cd "$dir" && snakemake -n --config results_dir="$TMP/dry-$1" 2>/dev/null \
              | awk '$1 == "total" {n = $2} END {print n}')
  jobs_quick=$(cd "$dir" && snakemake -n --configfile config/quick.yaml \
               --config results_dir="$TMP/dry-$1" 2>/dev/null | awk '$1 == "total" {n = $2} END {print n}')
  local t0 t1
  t0=$(date +%s.%N)
  (cd "$dir" && snakemake --cores "$CORES" --configfile config/quick.yaml \
     --config results_dir="$TMP/results-$1" >"$TMP/$1.log" 2>&1)
  t1=$(date +%s.%N)
  python3 - "$1" "$2" "$t0" "$t1" "$jobs_full" "$jobs_quick" "$TMP/results-$1/benchmarks" <<'EOF'
import sys
from pathlib import Path
name, commit, t0, t1, full, quick, bench = sys.argv[1:]
rows = []
for tsv in Path(bench).rglob("*.tsv"):
    head, *_, last = tsv.read_text().splitlines()
    row = dict(zip(head.split("\t"), last.split("\t")))
    rows.append((tsv.relative_to(bench).parts[0], float(row["s"]), float(row["cpu_time"] or 0)))
total_s = sum(r[1] for r in rows)
print(f"{name}\t{commit}\t{float(t1) - float(t0):.1f}\t{full}\t{quick}\t{len(rows)}\t{total_s:.1f}")
EOF
}

{
  run before "$(git rev-parse --short "$BEFORE")"
  run after "$(git rev-parse --short "$AFTER")"
} >"$TMP/rows.tsv"

python3 - "$TMP/rows.tsv" "$CORES" <<'EOF'
import platform, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
cores = sys.argv[2]
print("# The quick configuration before and after one job per architecture and stage\n")
print(f"Produced by `bash bench/bench_quick.sh` on this machine ({platform.machine()}, "
      f"`--cores {cores}`), the two runs one after the other from empty results. Ratios are the "
      "result; the absolute seconds only describe this shared machine.\n")
print("| commit | wall time (s) | jobs planned, full config | jobs planned, quick config | "
      "jobs with benchmark files | their summed wall time (s) |")
print("|---|---:|---:|---:|---:|---:|")
for name, commit, wall, full, quick, nb, tot in rows:
    print(f"| {name} ({commit}) | {wall} | {full} | {quick} | {nb} | {tot} |")
(b, a) = rows
print(f"\nWall time after / before: **{float(a[2]) / float(b[2]):.2f}**; jobs planned for the full "
      f"configuration {b[3]} -> {a[3]}, for the quick one {b[4]} -> {a[4]}.")
EOF
