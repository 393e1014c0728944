"""Compare two runs' ``results/`` folders: the same files, and the same numbers in them.

Used by ``.ci/slurm_test.sh`` to check that the workflow gives identical results through
SLURM and on one machine, and usable from the command line::

    python -m vae_novelty.compare RUN_A/results RUN_B/results

Every file under the two folders (outside ``logs/`` and ``benchmarks/``, whose contents
hold timings and host names) must exist in both. Data files must hold identical values:
files with equal bytes are identical; otherwise Parquet files are compared as Arrow tables
(schema, schema metadata and every value), ``.npz`` archives array by array (names, dtypes,
shapes, values; NaN equals NaN), PyTorch files (``.pt``, e.g. models) by their contents
(tensors and metadata; the zip archive inside holds the random name of the temporary file it
was written to, so its bytes never match) and CSV/TSV files cell by cell. Other files
(figures) are only required to exist in both.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import Iterable

EXCLUDED_DIRS = ("logs", "benchmarks")
DATA_SUFFIXES = (".parquet", ".npz", ".pt", ".csv", ".tsv")


def list_files(root: Path, excluded_dirs: Iterable[str] = EXCLUDED_DIRS) -> set[str]:
    """Paths (relative, POSIX) of the files under ``root``, outside the excluded folders."""
    excluded = set(excluded_dirs)
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not excluded & set(p.relative_to(root).parts[:-1])
    }


def compare_results(
    dir_a: Path | str,
    dir_b: Path | str,
    *,
    excluded_dirs: Iterable[str] = EXCLUDED_DIRS,
    data_suffixes: Iterable[str] = DATA_SUFFIXES,
) -> list[str]:
    """Every difference between two results folders, one line each (empty: identical)."""
    a, b = Path(dir_a), Path(dir_b)
    problems = [f"{d}: not a directory" for d in (a, b) if not d.is_dir()]
    if problems:
        return problems
    files_a, files_b = list_files(a, excluded_dirs), list_files(b, excluded_dirs)
    problems += [f"{rel}: only in {a}" for rel in sorted(files_a - files_b)]
    problems += [f"{rel}: only in {b}" for rel in sorted(files_b - files_a)]
    suffixes = tuple(s.lower() for s in data_suffixes)
    for rel in sorted(files_a & files_b):
        if not rel.lower().endswith(suffixes):
            continue
        fa, fb = a / rel, b / rel
        if fa.read_bytes() == fb.read_bytes():
            continue
        try:
            diffs = _compare_contents(fa, fb)
        except Exception as exc:  # noqa: BLE001 - an unreadable file is a difference
            diffs = [f"cannot compare ({type(exc).__name__}: {exc})"]
        problems += [f"{rel}: {d}" for d in diffs]
    return problems


def _compare_contents(fa: Path, fb: Path) -> list[str]:
    suffix = fa.suffix.lower()
    if suffix == ".parquet":
        return _compare_parquet(fa, fb)
    if suffix == ".npz":
        return _compare_npz(fa, fb)
    if suffix == ".pt":
        return _compare_torch(fa, fb)
    if suffix in (".csv", ".tsv"):
        return _compare_delimited(fa, fb, "\t" if suffix == ".tsv" else ",")
    return ["contents differ"]


def _first_mismatch(x, y) -> str:
    """Where two equally shaped numpy arrays first differ (NaN equals NaN)."""
    import numpy as np

    if x.dtype.kind in "fc":
        same = (x == y) | (np.isnan(x) & np.isnan(y))
    else:
        same = x == y
    bad = np.argwhere(~np.asarray(same))
    if len(bad) == 0:
        return ""
    where = tuple(int(i) for i in bad[0])
    return f"{len(bad)} value(s) differ, first at index {where}: {x[where]!r} != {y[where]!r}"


def _compare_arrays(name: str, x, y) -> list[str]:
    if x.dtype != y.dtype:
        return [f"{name}: dtype {x.dtype} != {y.dtype}"]
    if x.shape != y.shape:
        return [f"{name}: shape {x.shape} != {y.shape}"]
    if x.dtype.kind == "O":
        x, y = x.astype(str), y.astype(str)
    mismatch = _first_mismatch(x, y)
    return [f"{name}: {mismatch}"] if mismatch else []


def _compare_npz(fa: Path, fb: Path) -> list[str]:
    import numpy as np

    with np.load(fa, allow_pickle=False) as za, np.load(fb, allow_pickle=False) as zb:
        names_a, names_b = set(za.files), set(zb.files)
        out = [f"array {n!r} only in the first file" for n in sorted(names_a - names_b)]
        out += [f"array {n!r} only in the second file" for n in sorted(names_b - names_a)]
        for n in sorted(names_a & names_b):
            out += _compare_arrays(f"array {n!r}", za[n], zb[n])
    return out


def _compare_torch(fa: Path, fb: Path) -> list[str]:
    import torch

    # weights_only: tensors and plain containers/values only; nothing is executed on load.
    a = torch.load(fa, map_location="cpu", weights_only=True)
    b = torch.load(fb, map_location="cpu", weights_only=True)
    return _compare_objects("", a, b)


def _compare_objects(where: str, a, b) -> list[str]:
    """Differences between two nested structures of dicts, lists and tensors."""
    import torch

    name = where or "top level"
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return _compare_arrays(name, a.detach().cpu().numpy(), b.detach().cpu().numpy())
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}[{k!r}] only in the first file" for k in a if k not in b]
        out += [f"{where}[{k!r}] only in the second file" for k in b if k not in a]
        for k in a:
            if k in b:
                out += _compare_objects(f"{where}[{k!r}]", a[k], b[k])
        return out
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += _compare_objects(f"{where}[{i}]", x, y)
        return out
    if type(a) is not type(b) or not (a == b or (a != a and b != b)):  # NaN equals NaN
        return [f"{name}: {a!r} != {b!r}"]
    return []


def _compare_parquet(fa: Path, fb: Path) -> list[str]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    ta, tb = pq.read_table(fa), pq.read_table(fb)
    out = []
    if ta.schema.metadata != tb.schema.metadata:
        keys = sorted({*(ta.schema.metadata or {}), *(tb.schema.metadata or {})})
        changed = [
            k.decode(errors="replace")
            for k in keys
            if (ta.schema.metadata or {}).get(k) != (tb.schema.metadata or {}).get(k)
        ]
        out.append(f"schema metadata differs (keys: {', '.join(changed)})")
    if ta.schema.remove_metadata() != tb.schema.remove_metadata():
        return out + [
            f"schema differs: {ta.schema.remove_metadata()} != {tb.schema.remove_metadata()}"
        ]
    if ta.num_rows != tb.num_rows:
        return out + [f"{ta.num_rows} rows != {tb.num_rows} rows"]
    for name in ta.column_names:
        ca, cb = ta.column(name).combine_chunks(), tb.column(name).combine_chunks()
        if ca.equals(cb):
            continue
        # Flatten (fixed-size) list columns to compare their values element by element.
        while (
            pa.types.is_list(ca.type)
            or pa.types.is_large_list(ca.type)
            or pa.types.is_fixed_size_list(ca.type)
        ):
            ca, cb = ca.flatten(), cb.flatten()
        # Arrow calls NaN unequal to NaN: compare the null positions, then the values.
        if len(ca) != len(cb) or not ca.is_null().equals(cb.is_null()):
            out.append(f"column {name!r}: lengths or null positions differ")
            continue
        out += _compare_arrays(
            f"column {name!r}",
            np.asarray(ca.to_numpy(zero_copy_only=False)),
            np.asarray(cb.to_numpy(zero_copy_only=False)),
        )
    return out


def _compare_delimited(fa: Path, fb: Path, delimiter: str) -> list[str]:
    rows_a = list(csv.reader(io.StringIO(fa.read_text()), delimiter=delimiter))
    rows_b = list(csv.reader(io.StringIO(fb.read_text()), delimiter=delimiter))
    if len(rows_a) != len(rows_b):
        return [f"{len(rows_a)} lines != {len(rows_b)} lines"]
    for i, (ra, rb) in enumerate(zip(rows_a, rows_b), start=1):
        if ra == rb:
            continue
        if len(ra) != len(rb):
            return [f"line {i}: {len(ra)} fields != {len(rb)} fields"]
        j = next(j for j, (x, y) in enumerate(zip(ra, rb)) if x != y)
        header = rows_a[0][j] if rows_a and j < len(rows_a[0]) else str(j + 1)
        return [f"line {i}, column {header!r}: {ra[j]!r} != {rb[j]!r}"]
    # Same cells but different bytes: line endings or quoting.
    return ["same values, different formatting (line endings or quoting)"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir_a", type=Path)
    parser.add_argument("dir_b", type=Path)
    args = parser.parse_args(argv)
    problems = compare_results(args.dir_a, args.dir_b)
    n_files = len(list_files(args.dir_a)) if args.dir_a.is_dir() else 0
    for line in problems:
        print(line)
    if problems:
        print(
            f"{len(problems)} difference(s) between {args.dir_a} and {args.dir_b}", file=sys.stderr
        )
        return 1
    print(f"identical: {n_files} files under {args.dir_a} and {args.dir_b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
