"""Compare two results folders of the same configuration, made by two commits: which files
are byte-identical, and for those that are not, whether only the recorded provenance differs.

    python bench/compare_results.py RESULTS_A RESULTS_B [--ignore NAME ...]

Logs, benchmarks, snapshots, the report and the run record are skipped (they hold times and
paths). A Parquet file that differs is compared as a table (column names, values) and by the
keys of its schema metadata; a torch file (`.pt`) by every tensor and value it holds, read
with `torch.load`. A JSON file by its keys. The last line counts the files in each class;
the exit status is 1 when any file differs in anything but the recorded provenance keys
(keys ending in `code_version`) or in a key with a path component named by --ignore (for
example `--ignore seconds` for timings that one of the commits recorded), else 0. Used for the behaviour-neutral redesign check in
docs/benchmarks/redesign-quick.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import torch

SKIP = ("logs/", "benchmarks/", "snapshots/", "report/", "run_record")


def is_provenance(key: str) -> bool:
    """What a file records about the code that made it (a commit), not about the result."""
    return key.rsplit("/", 1)[-1].endswith("code_version")


def _flat(obj, prefix=""):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _flat(value, f"{prefix}/{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _flat(value, f"{prefix}[{i}]")
    else:
        yield prefix, obj


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    return type(a) is type(b) and a == b


def differing_keys(a: Path, b: Path) -> set[str] | None:
    """The keys in which two files of one kind differ, or None when the kind is not known."""
    if a.suffix == ".parquet":
        ta, tb = pq.read_table(a), pq.read_table(b)
        keys = set()
        if ta.schema.names != tb.schema.names or not ta.equals(tb):
            keys.add("table data")
        ma, mb = ta.schema.metadata or {}, tb.schema.metadata or {}
        for k in set(ma) | set(mb):
            if ma.get(k) != mb.get(k):
                keys |= _json_keys(ma.get(k), mb.get(k), prefix=k.decode())
        return keys
    if a.suffix == ".pt":
        fa = dict(_flat(torch.load(a, map_location="cpu", weights_only=False)))
        fb = dict(_flat(torch.load(b, map_location="cpu", weights_only=False)))
        return {k for k in set(fa) | set(fb) if not _same(fa.get(k), fb.get(k))}
    if a.suffix == ".json":
        return _json_keys(a.read_bytes(), b.read_bytes())
    return None


def _json_keys(a: bytes | None, b: bytes | None, prefix: str = "") -> set[str]:
    """The flattened keys in which two JSON texts differ (the whole text if either is not JSON)."""
    try:
        fa, fb = dict(_flat(json.loads(a), prefix)), dict(_flat(json.loads(b), prefix))
    except (TypeError, ValueError):
        return {prefix or "text"}
    return {k for k in set(fa) | set(fb) if not _same(fa.get(k), fb.get(k))}


def compare(a: Path, b: Path, ignore: frozenset[str] = frozenset()) -> int:
    def accepted(key: str) -> bool:
        return is_provenance(key) or bool(ignore & set(key.replace("[", "/").split("/")))

    def files(root: Path) -> set[str]:
        return {
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and not p.relative_to(root).as_posix().startswith(SKIP)
        }

    fa, fb = files(a), files(b)
    for only, root in ((fa - fb, a), (fb - fa, b)):
        for rel in sorted(only):
            print(f"only in {root}: {rel}")
    identical, provenance_only, other = 0, {}, []
    for rel in sorted(fa & fb):
        if (a / rel).read_bytes() == (b / rel).read_bytes():
            identical += 1
            continue
        keys = differing_keys(a / rel, b / rel)
        if keys is not None and all(map(accepted, keys)):
            for key in keys:
                provenance_only[key] = provenance_only.get(key, 0) + 1
            continue
        other.append(rel)
        print(f"DIFFERENT {rel}: " + (", ".join(sorted(keys)) if keys is not None else "bytes"))
    n_prov = len(fa & fb) - identical - len(other)
    print(
        f"{identical} files byte-identical; {n_prov} differ only in recorded provenance "
        f"or ignored keys "
        f"({', '.join(f'{k}: {n}' for k, n in sorted(provenance_only.items()))}); "
        f"{len(other)} differ otherwise; {len(fa - fb) + len(fb - fa)} in one folder only"
    )
    return 1 if other or fa != fb else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        help="a key name whose differences are accepted (repeatable)",
    )
    args = parser.parse_args()
    sys.exit(compare(args.a, args.b, frozenset(args.ignore)))
