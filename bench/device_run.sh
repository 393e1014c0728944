#!/usr/bin/env bash
# One call on a GPU machine: the CUDA-only tests, the full configuration, the GPU benchmarks
# and (time permitting) the epoch study, inside a fixed time budget, with everything worth
# keeping packed under $OUT. Documented in docs/benchmarks/README.md.
#
#   OUT=/tmp/out BUDGET_S=540 bash bench/device_run.sh          # on the GPU machine
#   OUT=/tmp/out BUDGET_S=300 REHEARSAL=1 bash bench/device_run.sh   # CPU rehearsal (tiny config)
#
# Python packages the machine lacks (snakemake, jsonschema, ...) are installed from the wheels
# in .whl/ (git-ignored; how to fetch them: docs/benchmarks/README.md) into /tmp/site, unless
# they are already importable. Every step has its own time limit, derived from what is left of
# BUDGET_S; a step that cannot finish in time is skipped, never left half-written in $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:?set OUT to the folder that collects the results}
BUDGET_S=${BUDGET_S:-540}
REHEARSAL=${REHEARSAL:-0}
START=$(date +%s)
WORK=${WORK:-/tmp/vae-novelty-device}
mkdir -p "$OUT" "$WORK"
LOG="$OUT/device_run.log"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg

left() { echo $(( BUDGET_S - ($(date +%s) - START) )); }
say() { echo "[$(date +%H:%M:%S) +$(( $(date +%s) - START ))s, $(left)s left] $*" | tee -a "$LOG"; }
# step NAME MIN_SECONDS MAX_SECONDS COMMAND...: run COMMAND with a limit of
# min(MAX_SECONDS, time left - 20 s for packing), or skip it when less than MIN_SECONDS remain.
step() {
  local name=$1 min=$2 max=$3; shift 3
  local limit=$(( $(left) - 20 )); (( limit > max )) && limit=$max
  if (( limit < min )); then say "SKIP $name (needs ${min}s, ${limit}s available)"; return 0; fi
  say "START $name (limit ${limit}s)"
  local t0=$(date +%s)
  timeout --signal=INT --kill-after=10 "$limit" "$@" >"$WORK/$name.out" 2>&1
  local rc=$?
  echo "$name rc=$rc seconds=$(( $(date +%s) - t0 ))" >>"$OUT/steps.txt"
  say "END $name rc=$rc after $(( $(date +%s) - t0 ))s"
  tail -n 5 "$WORK/$name.out" | sed 's/^/    /' | tee -a "$LOG"
  return 0
}

say "device run in $REPO, budget ${BUDGET_S}s, rehearsal=$REHEARSAL"
if ! python3 -c "import snakemake, jsonschema" 2>/dev/null; then
  if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl >>"$LOG" 2>&1 || { say "wheel install failed"; exit 1; }
    export PYTHONPATH=/tmp/site
  else
    say "snakemake is missing and there are no wheels in .whl/"; exit 1
  fi
fi
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
python3 - <<'EOF' 2>&1 | tee -a "$LOG"
import platform, torch, snakemake
print("python", platform.python_version(), "torch", torch.__version__, "snakemake",
      snakemake.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
EOF
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || echo "no nvidia-smi" >"$OUT/nvidia-smi.txt"
lscpu | head -20 >>"$OUT/nvidia-smi.txt" 2>&1
# GPU utilisation and memory once a second for the whole call
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -l 1 \
    >"$WORK/gpu-util.csv" 2>/dev/null &
  SAMPLER=$!
fi

if [[ $REHEARSAL == 1 ]]; then
  FULL_CFG=(--configfile tests/configs/tiny.yaml)
  DEVICE=cpu; GPU_JOBS=0; STUDY_EPOCHS=(3 5)
  BENCH_T1=(--n-train 2000 --n-test 100 --repeats 1)
  BENCH_TR=(--members 3 --images 1000 --test-images 200 --epochs 1 --device cpu)
else
  FULL_CFG=(--configfile config/config.yaml)
  DEVICE=cuda; GPU_JOBS=6; STUDY_EPOCHS=(30 100)
  BENCH_T1=(--device cuda --repeats 2)
  BENCH_TR=(--members 11 --images 60000 --test-images 1000 --epochs 1 --device cuda)
fi
# (one --config per call: a second one would replace the first, and a section named twice in
# it keeps only the last mapping)
SMK=(python3 -m snakemake --cores "$(nproc)" --resources gpu=$GPU_JOBS --scheduler greedy)

# 1. the CUDA-only tests (skipped on a machine without a GPU)
step cuda_tests 30 120 python3 -m pytest -q -rs -p no:cacheprovider -k cuda \
  tests/test_theorem1.py tests/test_elbo.py tests/test_ensemble.py tests/test_evaluate.py
cp "$WORK/cuda_tests.out" "$OUT/cuda_tests.txt"

# 2. the full configuration from empty results
FULL="$WORK/full"
rm -rf "$FULL"; mkdir -p "$FULL"
step full_run 120 420 "${SMK[@]}" -s "$REPO/Snakefile" -d "$FULL" "${FULL_CFG[@]}" \
  --config results_dir=results "training={device: $DEVICE}" "theorem1={device: $DEVICE}"
cp "$WORK/full_run.out" "$OUT/full_run.txt"

# 3. benchmarks on the GPU (ratios within this run; docs/benchmarks/*-gpu.md)
step bench_theorem1 30 60 python3 bench/bench_theorem1.py "${BENCH_T1[@]}" \
  --out "$WORK/bench/theorem1.json"
step bench_training 40 120 python3 bench/bench_training.py --arch h400-200-100 \
  "${BENCH_TR[@]}" --out "$WORK/bench/training"

# 4. the epoch study (issue 13): the four models of Figures 1-2 trained longer
for epochs in "${STUDY_EPOCHS[@]}"; do
  dir="$WORK/epochs$epochs"; mkdir -p "$dir"
  study_cfg=(--configfile config/epoch-study.yaml)
  [[ $REHEARSAL == 1 ]] && study_cfg=(--configfile tests/configs/tiny.yaml)
  step "epochs$epochs" 60 180 "${SMK[@]}" -s "$REPO/Snakefile" -d "$dir" "${study_cfg[@]}" \
    --config results_dir=results "training={device: $DEVICE, epochs: $epochs}" \
    "theorem1={device: $DEVICE}"
done

# 5. pack: at most 8 files come back; everything small goes into one archive
[[ -n ${SAMPLER:-} ]] && kill "$SAMPLER" 2>/dev/null
say "packing"
(
  cd "$WORK" || exit 0
  items=()
  for d in full epochs*; do
    [[ -d $d/results ]] || continue
    for sub in figures tables benchmarks logs models run_record.yaml; do
      [[ -e $d/results/$sub ]] && items+=("$d/results/$sub")
    done
  done
  [[ -d bench ]] && items+=(bench)
  for f in *.out gpu-util.csv; do [[ -e $f ]] && items+=("$f"); done
  # figures as PNG only (the PDFs double the size), models' histories but not the weights
  tar -czf "$OUT/results.tar.gz" --exclude='*.pdf' --exclude='*.pt' --exclude='*.npz' --exclude=theorem1.parquet \
    "${items[@]}" 2>>"$LOG"
)
ls -la "$OUT" | tee -a "$LOG"
say "done"
