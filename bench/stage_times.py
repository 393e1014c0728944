"""Wall time per stage of one Snakemake run, from its console output (and GPU utilisation).

    python bench/stage_times.py RUN_OUTPUT [--gpu-util gpu-util.csv] [--benchmarks DIR]

RUN_OUTPUT is what `snakemake` printed (bench/device_run.sh keeps it): every job's start
(``[date]`` then ``rule NAME:`` / ``localrule NAME:`` and its ``jobid``) and end (``[date]``
then ``Finished jobid: N``). Prints a Markdown table: per rule, the number of jobs, the span
from its first job's start to its last job's end, and the sum of its jobs' wall times; then
the whole run's span. With ``--gpu-util`` (``nvidia-smi --query-gpu=timestamp,
utilization.gpu,memory.used --format=csv,noheader -l 1``), the mean GPU utilisation over the
run and per rule span. With ``--benchmarks`` (the run's ``benchmarks/`` folder), the summed
``s`` and ``cpu_time`` of the rules' benchmark files, which exclude Snakemake's own start-up
of each job.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path

STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
START = re.compile(r"^(?:local)?rule (\S+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
END = re.compile(r"^Finished jobid: (\d+)")


def parse_jobs(text: str) -> dict[int, dict]:
    """jobid -> {rule, start, end} from a Snakemake console output."""
    jobs: dict[int, dict] = {}
    stamp = None
    pending = None
    for line in text.splitlines():
        if m := STAMP.match(line.strip()):
            stamp = datetime.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y")
        elif m := START.match(line):
            pending = {"rule": m.group(1), "start": stamp}
        elif (m := JOBID.match(line)) and pending is not None:
            jobs[int(m.group(1))] = {**pending, "end": None}
            pending = None
        elif (m := END.match(line)) and int(m.group(1)) in jobs:
            jobs[int(m.group(1))]["end"] = stamp
    return jobs


def read_gpu_util(path: Path) -> list[tuple[datetime, float]]:
    out = []
    for line in path.read_text().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2 or not parts[1].endswith("%"):
            continue
        out.append(
            (
                datetime.strptime(parts[0].split(".")[0], "%Y/%m/%d %H:%M:%S"),
                float(parts[1].rstrip(" %")),
            )
        )
    return out


def mean_util(samples, start, end) -> float | None:
    values = [u for t, u in samples if start <= t <= end]
    return sum(values) / len(values) if values else None


def benchmark_rule(folder: str, stem: str, rules: set[str]) -> str:
    """The rule of ``benchmarks/{folder}/.../{stem}.tsv`` (train/mini.tsv: train_mini)."""
    for name in ((f"{folder}_mini",) if stem == "mini" else ()) + (folder, f"{folder}_sweep"):
        if name in rules:
            return name
    return folder


def benchmark_sums(folder: Path, rules: set[str]) -> dict[str, tuple[float, float]]:
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for tsv in folder.rglob("*.tsv"):
        rule = benchmark_rule(tsv.relative_to(folder).parts[0], tsv.stem, rules)
        lines = tsv.read_text().splitlines()
        head, values = lines[0].split("\t"), lines[-1].split("\t")
        row = dict(zip(head, values))
        sums[rule][0] += float(row["s"])
        sums[rule][1] += float(row.get("cpu_time") or 0.0)
    return {k: (v[0], v[1]) for k, v in sums.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_output", type=Path)
    ap.add_argument("--gpu-util", type=Path)
    ap.add_argument("--benchmarks", type=Path)
    args = ap.parse_args()
    jobs = [j for j in parse_jobs(args.run_output.read_text()).values() if j["end"]]
    util = read_gpu_util(args.gpu_util) if args.gpu_util else []
    bench = benchmark_sums(args.benchmarks, {j["rule"] for j in jobs}) if args.benchmarks else {}
    by_rule: dict[str, list[dict]] = defaultdict(list)
    for j in jobs:
        by_rule[j["rule"]].append(j)
    rows = sorted(by_rule.items(), key=lambda kv: min(j["start"] for j in kv[1]))
    print(
        "| rule | jobs | first start -> last end (s) | sum of job wall times (s) |"
        + (" mean GPU util. over its span |" if util else "")
        + (" benchmark files: sum of s / cpu_time (s) |" if bench else "")
    )
    print("|---|---:|---:|---:|" + ("---:|" if util else "") + ("---:|" if bench else ""))
    for rule, js in rows:
        start, end = min(j["start"] for j in js), max(j["end"] for j in js)
        total = sum((j["end"] - j["start"]).total_seconds() for j in js)
        line = f"| {rule} | {len(js)} | {(end - start).total_seconds():.0f} | {total:.0f} |"
        if util:
            u = mean_util(util, start, end)
            line += f" {u:.0f}% |" if u is not None else " - |"
        if bench:
            b = bench.get(rule)
            line += f" {b[0]:.0f} / {b[1]:.0f} |" if b else " - |"
        print(line)
    start, end = min(j["start"] for j in jobs), max(j["end"] for j in jobs)
    line = f"| **whole run** | {len(jobs)} | {(end - start).total_seconds():.0f} | |"
    if util:
        u = mean_util(util, start, end)
        line += f" {u:.0f}% |" if u is not None else " - |"
    print(line + (" |" if bench else ""))


if __name__ == "__main__":
    main()
