#!/usr/bin/env bash
# The tiny workflow on a real one-node SLURM cluster on 127.0.0.1, through profiles/slurm,
# then the same configuration locally (--cores 2); the two results/ folders must be identical.
#
#   bash .ci/slurm_test.sh        # as root on Debian 12, with the project's venv active
#
# Installs slurmctld, slurmd, slurm-client and munge (apt, no recommends) when missing, writes
# /etc/slurm/slurm.conf (the plugin's job steps read only that path; an existing file is put
# back afterwards), starts munged, slurmctld and slurmd in the foreground under this script
# and stops them by PID on exit. Exits non-zero when a daemon does not come up, a run fails
# or exceeds SLURM_TEST_TIMEOUT seconds (default 900), a grouped rule was submitted on its
# own, or the results differ. Set SLURM_TEST_KEEP=1 to keep the work folder.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIMIT=${SLURM_TEST_TIMEOUT:-900}
KEEP=${SLURM_TEST_KEEP:-0}
CONFIG="$REPO/tests/configs/tiny.yaml"
SLURM_CONF=/etc/slurm/slurm.conf
PARTITION=ci

log() { printf '== %s\n' "$*"; }
die() { printf 'slurm_test: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs and starts SLURM)"
command -v snakemake >/dev/null || die "snakemake not found: activate the project's venv first"
if pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; then
  die "a SLURM daemon already runs on this machine; not touching it"
fi

WORK=$(mktemp -d /tmp/slurm-ci.XXXXXX)
MUNGED_PID="" CTLD_PID="" SLURMD_PID="" CONF_WRITTEN="" CONF_BACKUP=""

stop_pid() {  # stop_pid PID NAME: SIGTERM, then SIGKILL after 10 s
  local pid=$1 name=$2 i
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  echo "slurm_test: $name ($pid) ignored SIGTERM, killing it" >&2
  kill -9 "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +e
  if [ -n "$CTLD_PID" ] && kill -0 "$CTLD_PID" 2>/dev/null; then
    # Jobs left by a failed or timed-out run (the cluster is ours alone: see the check above).
    if [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
      log "cancelling leftover jobs: $(squeue -h -o %i | tr '\n' ' ')"
      scancel --user=root
      for _ in $(seq 25); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
    fi
  fi
  stop_pid "$SLURMD_PID" slurmd
  stop_pid "$CTLD_PID" slurmctld
  stop_pid "$MUNGED_PID" munged
  if [ -n "$CONF_BACKUP" ]; then
    mv -f "$CONF_BACKUP" "$SLURM_CONF"
  elif [ -n "$CONF_WRITTEN" ]; then
    rm -f "$SLURM_CONF"
  fi
  if [ "$rc" -ne 0 ]; then
    echo "slurm_test: FAILED (exit $rc); daemon logs:" >&2
    for f in "$WORK"/log/*.log; do
      [ -f "$f" ] && { echo "--- tail $f" >&2; tail -n 30 "$f" >&2; }
    done
  fi
  if [ "$KEEP" = 1 ] || [ "$rc" -ne 0 ]; then
    echo "slurm_test: work folder kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------------- install
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  log "installing slurmctld slurmd slurm-client munge"
  t0=$(date +%s)
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge >"$WORK/apt.log" 2>&1 \
    || { tail -n 20 "$WORK/apt.log" >&2; die "apt-get install failed"; }
  log "installed in $(( $(date +%s) - t0 )) s"
fi

# ------------------------------------------------------------------------- configure
HOST=$(hostname -s)
CPUS=$(nproc)
MEM_AVAILABLE_MB=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
REAL_MEMORY=$(( MEM_AVAILABLE_MB * 85 / 100 ))
mkdir -p "$WORK"/{state,spool,log,run} /etc/slurm
if [ -e "$SLURM_CONF" ]; then
  CONF_BACKUP="$WORK/slurm.conf.orig"
  cp -p "$SLURM_CONF" "$CONF_BACKUP"
fi
CONF_WRITTEN=1
cat >"$SLURM_CONF" <<EOF
# Written by vae-novelty .ci/slurm_test.sh for a one-node test cluster; removed afterwards.
ClusterName=vaeci
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/run/slurmctld.pid
SlurmdPidFile=$WORK/run/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=$WORK/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
# squeue (the status command without slurmdbd) must still see finished jobs.
MinJobAge=600
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REAL_MEMORY State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

# ------------------------------------------------------------------------- start
log "starting munged, slurmctld, slurmd (node $HOST: $CPUS CPUs, $REAL_MEMORY MB)"
if pgrep -x munged >/dev/null; then
  log "munged already runs: using it"
else
  [ -s /etc/munge/munge.key ] || { mungekey --create --force; chown munge:munge /etc/munge/munge.key; }
  mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
  setpriv --reuid=munge --regid=munge --init-groups \
    munged --foreground --log-file="$WORK/log/munged.log" >>"$WORK/log/munged.log" 2>&1 &
  MUNGED_PID=$!
  for _ in $(seq 50); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done
  [ -S /run/munge/munge.socket.2 ] || die "munged did not start"
fi
slurmctld -D >>"$WORK/log/slurmctld.stderr.log" 2>&1 &
CTLD_PID=$!
slurmd -D >>"$WORK/log/slurmd.stderr.log" 2>&1 &
SLURMD_PID=$!
for _ in $(seq 120); do
  [ "$(sinfo -h -p "$PARTITION" -o %t 2>/dev/null)" = idle ] && break
  kill -0 "$CTLD_PID" 2>/dev/null || die "slurmctld exited"
  kill -0 "$SLURMD_PID" 2>/dev/null || die "slurmd exited"
  sleep 0.5
done
[ "$(sinfo -h -p "$PARTITION" -o %t 2>/dev/null)" = idle ] || die "node not idle after 60 s: $(sinfo 2>&1)"
sinfo

# ------------------------------------------------------------------------- profile
# profiles/slurm as users get it, with the site-specific lines set for this cluster: its
# partition, no account (no accounting database; plugin 2.8.0 then tries to guess one with
# sacct, fails and submits without) and squeue for job status (sacct needs slurmdbd).
mkdir -p "$WORK/profile"
python - "$REPO/profiles/slurm/config.yaml" "$WORK/profile/config.yaml" "$PARTITION" <<'EOF'
import sys

import yaml

src, dst, partition = sys.argv[1:4]
profile = yaml.safe_load(open(src))
resources = profile["default-resources"]
resources["slurm_partition"] = partition
resources.pop("slurm_account", None)
profile.update({"slurm-status-command": "squeue",
                "slurm-init-seconds-before-status-checks": 2,
                "slurm-keep-successful-logs": True})
with open(dst, "w") as fh:
    yaml.safe_dump(profile, fh, sort_keys=False)
EOF

run_snakemake() {  # run_snakemake NAME ARGS...: the tiny workflow into $WORK/NAME
  local name=$1 t0 rc=0
  shift
  t0=$(date +%s.%N)
  # Snakemake ignores SIGTERM while it waits on cluster jobs: timeout escalates to SIGKILL.
  (cd "$WORK" && timeout -k 10 "$LIMIT" snakemake -s "$REPO/Snakefile" \
      --directory "$WORK/$name" --configfile "$CONFIG" "$@") >"$WORK/$name.log" 2>&1 || rc=$?
  WALL=$(python -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" \
    "$t0" "$(date +%s.%N)")
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$WORK/$name.log" >&2
    [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && die "$name run exceeded ${LIMIT} s (hung?)"
    die "$name run failed (exit $rc); log: $WORK/$name.log"
  fi
  log "$name run: ${WALL} s"
}

# ------------------------------------------------------------------------- runs
log "tiny workflow through SLURM (profiles/slurm)"
# mem_mb caps every job's and group job's memory request at what this node has.
run_snakemake slurm --profile "$WORK/profile" --resources "mem_mb=$REAL_MEMORY" gpu=1
SLURM_WALL=$WALL
[ -z "$(squeue -h -o %i)" ] || die "jobs still queued after the run: $(squeue)"

log "tiny workflow locally (--cores 2)"
run_snakemake local --cores 2
LOCAL_WALL=$WALL

# ------------------------------------------------------------------------- checks
SUBMITTED=$(grep -c '_slurm_rpc_submit_batch_job: JobId=' "$WORK/log/slurmctld.log" || true)
# Finished jobs stay visible to scontrol for MinJobAge (600 s).
scontrol -o show job >"$WORK/jobs.txt" 2>&1 || true
python - "$WORK/slurm" "$REPO/profiles/slurm/config.yaml" "$SUBMITTED" "$SLURM_WALL" \
  "$LOCAL_WALL" "$WORK/jobs.txt" <<'EOF'
"""Grouping: no rule of the profile's groups went to SLURM on its own; print the numbers."""
import re
import sys
from pathlib import Path

import yaml

workdir, profile_path, submitted, slurm_wall, local_wall, jobs_txt = sys.argv[1:7]
print("submissions (what each sbatch asked for):")
for line in sorted(Path(jobs_txt).read_text().splitlines(),
                   key=lambda l: int(re.search(r"JobId=(\d+)", l).group(1)) if "JobId=" in l else 0):
    fields = dict(re.findall(r"(\w+)=(\S+)", line))
    if "JobId" in fields:
        print(f"  job {fields['JobId']:>3} {fields.get('JobState', '?'):<10} "
              f"cpus={fields.get('NumCPUs', '?')} mem={fields.get('MinMemoryNode', '?')} "
              f"time={fields.get('TimeLimit', '?')} run={fields.get('RunTime', '?')} "
              f"{fields.get('Comment', '')}")
profile = yaml.safe_load(open(profile_path))
groups = dict(item.split("=", 1) for item in profile.get("groups", []))
logdir = Path(workdir) / ".snakemake" / "slurm_logs"
# The plugin writes one log per submission: rule_<rule>/<wildcards>/<jobid>.log or
# group_<group>_<rules>/<jobid>.log.
per_kind = {}
for log in logdir.rglob("*.log"):
    kind = log.relative_to(logdir).parts[0]
    per_kind[kind] = per_kind.get(kind, 0) + 1
# Jobs run, from Snakemake's "Job stats" table (the target rule `all` runs locally).
text = (Path(workdir).parent / "slurm.log").read_text()
stats = text.split("Job stats:")[-1].split("\n\n")[0].splitlines()[3:]
jobs = {m.group(1): int(m.group(2)) for line in stats
        if (m := re.match(r"^(\S+)\s+(\d+)$", line.strip())) and m.group(1) not in ("total",)}
n_jobs = sum(n for rule, n in jobs.items() if rule != "all")
print(f"jobs run: {n_jobs} ({', '.join(f'{r} {n}' for r, n in sorted(jobs.items()))})")
print(f"sbatch submissions: {submitted} (slurmctld log); by log folder: "
      + ", ".join(f"{k} {n}" for k, n in sorted(per_kind.items())))
alone = sorted(k for k in per_kind if k.startswith("rule_") and k[5:] in groups)
if alone:
    sys.exit(f"grouped rule(s) submitted on their own: {', '.join(alone)}")
if sum(per_kind.values()) != int(submitted):
    sys.exit(f"{submitted} submissions but {sum(per_kind.values())} SLURM job logs")
grouped = sum(n for rule, n in jobs.items() if rule in groups)
group_subs = sum(n for k, n in per_kind.items() if k.startswith("group_"))
print(f"grouped jobs: {grouped} in {group_subs} submission(s)")
if grouped > 1 and group_subs >= grouped:
    sys.exit("grouping did not reduce the number of submissions")
print(f"wall time: SLURM {slurm_wall} s, local {local_wall} s")
EOF

log "comparing results/ of the two runs"
PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}" \
  python -m vae_novelty.compare "$WORK/slurm/results" "$WORK/local/results"
log "OK"
