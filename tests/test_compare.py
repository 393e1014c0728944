"""vae_novelty.compare: the check that a SLURM run and a local run wrote the same results."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from vae_novelty.compare import compare_results, main


def write_parquet(path, z_mean, *, compression="snappy", meta=b'{"model_id": "h64.full.s0"}'):
    z = np.asarray(z_mean, dtype=np.float32)
    table = pa.table(
        {
            "mnist_index": pa.array(np.arange(len(z), dtype=np.int64)),
            "z_mean": pa.FixedSizeListArray.from_arrays(pa.array(z.reshape(-1)), z.shape[1]),
        }
    ).replace_schema_metadata({b"vae_novelty": meta})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression=compression)


def write_model(path, weight, *, meta=None):
    """A model file as the pipeline writes it: saved under a temporary name, then renamed (the
    zip archive inside a .pt file is named after the file it was first written to)."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(
        {
            "state_dict": {"enc.weight": torch.tensor(weight)},
            "meta": meta or {"model_id": "h64.full.s0", "n_train": 300},
        },
        tmp,
    )
    tmp.replace(path)


@pytest.fixture
def run_a(tmp_path):
    """A small results folder with one file of each kind the pipeline writes."""
    root = tmp_path / "a" / "results"
    write_parquet(root / "posteriors/h64/full_s0.parquet", [[0.5, -1.0], [2.0, np.nan]])
    (root / "splits").mkdir(parents=True)
    np.savez(root / "splits/full.npz", train_idx=np.arange(5), weights=np.array([0.1, np.nan]))
    (root / "models/h64").mkdir(parents=True)
    (root / "models/h64/full_s0.history.csv").write_text(
        "epoch,train_neg_elbo,test_neg_elbo\n1,210.5,205.25\n2,180.125,179.0\n"
    )
    write_model(root / "models/h64/full_s0.pt", [[1.0, 2.0], [3.0, 4.0]])
    (root / "figures").mkdir()
    (root / "figures/figure1.png").write_bytes(b"\x89PNG one")
    (root / "logs/train").mkdir(parents=True)
    (root / "logs/train/h64.log").write_text("2026-01-01 00:00:00 INFO host a\n")
    (root / "benchmarks/train").mkdir(parents=True)
    (root / "benchmarks/train/h64.tsv").write_text("s\n1.5\n")
    return root


@pytest.fixture
def run_b(run_a, tmp_path):
    """An identical copy of ``run_a``."""
    root = tmp_path / "b" / "results"
    shutil.copytree(run_a, root)
    return root


def test_identical_runs_have_no_differences(run_a, run_b):
    assert compare_results(run_a, run_b) == []


def test_changed_number_in_parquet_is_reported(run_a, run_b):
    write_parquet(run_b / "posteriors/h64/full_s0.parquet", [[0.5, -1.0], [2.0000002, np.nan]])
    problems = compare_results(run_a, run_b)
    assert len(problems) == 1
    assert problems[0].startswith("posteriors/h64/full_s0.parquet: column 'z_mean'")
    assert "index (2,)" in problems[0]


def test_changed_number_in_npz_is_reported(run_a, run_b):
    np.savez(
        run_b / "splits/full.npz",
        train_idx=np.array([0, 1, 2, 3, 7]),
        weights=np.array([0.1, np.nan]),
    )
    assert compare_results(run_a, run_b) == [
        "splits/full.npz: array 'train_idx': 1 value(s) differ, first at index (4,): "
        "np.int64(4) != np.int64(7)"
    ]


def test_changed_number_in_csv_is_reported(run_a, run_b):
    path = run_b / "models/h64/full_s0.history.csv"
    path.write_text(path.read_text().replace("179.0", "179.5"))
    assert compare_results(run_a, run_b) == [
        "models/h64/full_s0.history.csv: line 3, column 'test_neg_elbo': '179.0' != '179.5'"
    ]


def test_missing_file_is_reported(run_a, run_b):
    (run_b / "models/h64/full_s0.pt").unlink()
    assert compare_results(run_a, run_b) == [f"models/h64/full_s0.pt: only in {run_a}"]


def test_extra_file_is_reported(run_a, run_b):
    (run_b / "figures/figure2.png").write_bytes(b"\x89PNG two")
    assert compare_results(run_a, run_b) == [f"figures/figure2.png: only in {run_b}"]


def test_changed_model_weight_or_metadata_is_reported(run_a, run_b):
    write_model(run_b / "models/h64/full_s0.pt", [[1.0, 2.0], [3.0, 4.5]])
    assert compare_results(run_a, run_b) == [
        "models/h64/full_s0.pt: ['state_dict']['enc.weight']: 1 value(s) differ, first at "
        "index (1, 1): np.float32(4.0) != np.float32(4.5)"
    ]
    write_model(
        run_b / "models/h64/full_s0.pt",
        [[1.0, 2.0], [3.0, 4.0]],
        meta={"model_id": "h64.full.s0", "n_train": 299},
    )
    assert compare_results(run_a, run_b) == [
        "models/h64/full_s0.pt: ['meta']['n_train']: 300 != 299"
    ]


def test_npz_array_dtype_and_name_changes_are_reported(run_a, run_b):
    np.savez(run_b / "splits/full.npz", train_idx=np.arange(5, dtype=np.int32), extra=np.zeros(1))
    problems = compare_results(run_a, run_b)
    assert "splits/full.npz: array 'weights' only in the first file" in problems
    assert "splits/full.npz: array 'extra' only in the second file" in problems
    assert "splits/full.npz: array 'train_idx': dtype int64 != int32" in problems


def test_parquet_metadata_change_is_reported(run_a, run_b):
    write_parquet(
        run_b / "posteriors/h64/full_s0.parquet",
        [[0.5, -1.0], [2.0, np.nan]],
        meta=b'{"model_id": "other"}',
    )
    assert compare_results(run_a, run_b) == [
        "posteriors/h64/full_s0.parquet: schema metadata differs (keys: vae_novelty)"
    ]


def test_same_values_in_different_bytes_are_identical(run_a, run_b):
    # Another compression codec changes every byte but no value; NaN equals NaN.
    write_parquet(
        run_b / "posteriors/h64/full_s0.parquet", [[0.5, -1.0], [2.0, np.nan]], compression="zstd"
    )
    np.savez_compressed(
        run_b / "splits/full.npz", train_idx=np.arange(5), weights=np.array([0.1, np.nan])
    )
    assert (run_a / "splits/full.npz").read_bytes() != (run_b / "splits/full.npz").read_bytes()
    # A model saved under another temporary name: other bytes, same tensors.
    (run_b / "models/h64/full_s0.pt").unlink()
    torch.save(torch.load(run_a / "models/h64/full_s0.pt"), run_b / "models/h64/other.tmp")
    (run_b / "models/h64/other.tmp").replace(run_b / "models/h64/full_s0.pt")
    assert (run_a / "models/h64/full_s0.pt").read_bytes() != (
        run_b / "models/h64/full_s0.pt"
    ).read_bytes()
    assert compare_results(run_a, run_b) == []


def test_logs_and_benchmarks_are_ignored_but_other_files_are_not(run_a, run_b):
    (run_b / "logs/train/h64.log").write_text("2026-01-02 00:00:00 INFO host b\n")
    (run_b / "benchmarks/train/h64.tsv").write_text("s\n9.5\n")
    (run_b / "logs/train/extra.log").write_text("only here\n")
    assert compare_results(run_a, run_b) == []
    # Figures need only exist in both: their bytes are not compared.
    (run_b / "figures/figure1.png").write_bytes(b"\x89PNG other")
    assert compare_results(run_a, run_b) == []


def test_unreadable_data_file_is_a_difference(run_a, run_b):
    (run_b / "splits/full.npz").write_bytes(b"not an npz")
    problems = compare_results(run_a, run_b)
    assert len(problems) == 1 and problems[0].startswith("splits/full.npz: cannot compare")


def test_missing_folder_is_reported(run_a, tmp_path):
    assert compare_results(run_a, tmp_path / "nowhere") == [
        f"{tmp_path / 'nowhere'}: not a directory"
    ]


def test_command_line_exit_status(run_a, run_b, capsys):
    assert main([str(run_a), str(run_b)]) == 0
    assert "identical: 5 files" in capsys.readouterr().out
    (run_b / "models/h64/full_s0.pt").unlink()
    assert main([str(run_a), str(run_b)]) == 1
    assert "only in" in capsys.readouterr().out
