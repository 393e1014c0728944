#!/usr/bin/env bash
# Mutation testing of the numeric core, one module at a time (mutmut 3.x; a development tool,
# not part of CI). Usage:
#
#   bench/mutation.sh [MODULE ...]       # e.g. bench/mutation.sh tables seeds
#
# With no MODULE, every module of the numeric core in turn. For each module the checkout
# (tracked and untracked, not ignored, files: uncommitted edits included) is copied to
# $MUTATION_DIR/MODULE (default /tmp/vae-novelty-mutation), the [tool.mutmut] section of the
# copy's pyproject.toml gets only_mutate = that module and the test files that import it, and
# `mutmut run` runs there under nice -n 19 with $MUTATION_CHILDREN workers (default 2). It
# prints the mutation score and the wall time and writes MODULE/results.txt (every mutant that
# was not killed, with `mutmut show` of each in MODULE/survivors.diff). Needs
# `pip install mutmut` (3.x) in the active environment.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUTDIR=${MUTATION_DIR:-/tmp/vae-novelty-mutation}
CHILDREN=${MUTATION_CHILDREN:-2}
CORE=(tables table_checks seeds decoder neighbours splits elbo model stacked train ensemble
      samples samples_table ct pixel_nn agreement chunks theorem1)

# the tests that exercise each module (the non-slow ones run: pyproject's pytest_add_cli_args)
tests_for() {
    case "$1" in
        tables | table_checks) echo "tests/test_tables.py" ;;
        seeds) echo "tests/test_seeds.py tests/test_quant.py" ;;
        theorem1) echo "tests/test_theorem1.py tests/test_theorem1_table.py tests/test_tables.py" ;;
        decoder) echo "tests/test_decoder.py tests/test_theorem1_table.py tests/test_tables.py" ;;
        neighbours) echo "tests/test_neighbours.py tests/test_theorem1_table.py tests/test_tables.py" ;;
        chunks) echo "tests/test_chunks.py tests/test_theorem1.py tests/test_theorem1_table.py tests/test_neighbours.py tests/test_pixel_nn.py" ;;
        elbo) echo "tests/test_elbo.py tests/test_evaluate.py tests/test_tables.py" ;;
        model) echo "tests/test_model.py tests/test_train.py tests/test_ensemble.py tests/test_elbo.py tests/test_decoder.py tests/test_theorem1_table.py" ;;
        train | ensemble) echo "tests/test_train.py tests/test_ensemble.py" ;;
        stacked) echo "tests/test_stacked.py tests/test_train.py tests/test_ensemble.py" ;;
        splits) echo "tests/test_splits.py tests/test_data.py tests/test_train.py tests/test_evaluate.py" ;;
        samples | samples_table) echo "tests/test_samples.py tests/test_figures_samples.py" ;;
        ct) echo "tests/test_ct.py" ;;
        pixel_nn) echo "tests/test_pixel_nn.py tests/test_ct.py" ;;
        agreement) echo "tests/test_agreement.py tests/test_size_eval.py" ;;
        *) echo "unknown module '$1' (one of: ${CORE[*]})" >&2; return 1 ;;
    esac
}

command -v mutmut >/dev/null || { echo "mutmut not found: pip install mutmut (3.x)" >&2; exit 1; }
modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=("${CORE[@]}")
for module in "${modules[@]}"; do
    tests=$(tests_for "$module")
    [ -f "$REPO/src/vae_novelty/$module.py" ] || { echo "no src/vae_novelty/$module.py" >&2; exit 1; }
    work="$OUTDIR/$module"
    rm -rf "$work" && mkdir -p "$work"
    (cd "$REPO" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$work")
    python - "$work/pyproject.toml" "$module" $tests <<'PY'
import re, sys
path, module, tests = sys.argv[1], sys.argv[2], sys.argv[3:]
text = open(path).read()
text = re.sub(r'(?m)^only_mutate = .*$', f'only_mutate = ["src/vae_novelty/{module}.py"]', text)
text = re.sub(r'(?m)^pytest_add_cli_args_test_selection = .*$',
              'pytest_add_cli_args_test_selection = [' + ", ".join(f'"{t}"' for t in tests) + ']',
              text)
open(path, "w").write(text)
PY
    echo "== $module: mutating src/vae_novelty/$module.py, tests: $tests ($work)"
    start=$(date +%s)
    # one torch thread per worker: the workers are forked, and 2 cores are shared anyway
    (cd "$work" && OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONHASHSEED=0 \
        nice -n 19 mutmut run --max-children "$CHILDREN" >"$work/run.log" 2>&1) || {
        echo "mutmut run failed for $module (exit $?); see $work/run.log" >&2; tail -20 "$work/run.log" >&2; exit 1; }
    wall=$(($(date +%s) - start))
    (cd "$work" && mutmut results --all true >"$work/all.txt" 2>&1 || true)
    (cd "$work" && mutmut results >"$work/results.txt" 2>&1 || true)
    # the diff of every mutant not killed, in one process (`mutmut show NAME` each is slow)
    (cd "$work" && python - >"$work/survivors.diff" 2>&1 <<'PY' || true
from mutmut.__main__ import find_mutant, get_diff_for_mutant, status_by_exit_code

for line in open("results.txt"):
    name, _, status = line.strip().rpartition(": ")
    if name and status != "killed":
        m = find_mutant(name)
        print(f"# {name}: {status_by_exit_code[m.exit_code_by_key[name]]}")
        print(get_diff_for_mutant(name, path=m.path))
PY
    )
    python - "$work/all.txt" "$module" "$wall" <<'PY'
import collections, sys
path, module, wall = sys.argv[1], sys.argv[2], int(sys.argv[3])
counts = collections.Counter(line.rsplit(":", 1)[1].strip() for line in open(path)
                             if ":" in line and "__mutmut_" in line)
total = sum(counts.values())
killed = counts.get("killed", 0)
score = 100 * killed / total if total else float("nan")
print(f"== {module}: {total} mutants, {killed} killed ({score:.1f}%), "
      f"{dict(sorted(counts.items()))}; wall {wall} s")
PY
done
