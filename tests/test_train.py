"""Single-model training: learns, is deterministic, stops on NaN, resumes bitwise."""

from __future__ import annotations

import pytest
import torch

from vae_novelty.hyperparams import TrainSettings
from vae_novelty.train import TrainingDiverged, train_vae


@pytest.fixture(scope="module")
def tiny_data():
    g = torch.Generator().manual_seed(0)
    # two blobs of "images" so that there is something to learn
    base = torch.rand(2, 784, generator=g)
    x = (base[torch.arange(200) % 2] + 0.1 * torch.rand(200, 784, generator=g)).clamp(0, 1)
    return x[:160], x[160:]


def cfg(**kw):
    """train_vae's settings and seed, as keyword arguments."""
    base = dict(hidden=[32], z_dim=4, epochs=4, batch_size=32, learning_rate=1e-3, seed=0)
    settings = {**base, **kw}
    seed = settings.pop("seed")
    return {"cfg": TrainSettings(**settings), "seed": seed}


def test_loss_decreases(tiny_data):
    _, hist = train_vae(*tiny_data, **cfg(epochs=6))
    df = hist.to_frame()
    assert list(df.epoch) == [1, 2, 3, 4, 5, 6]
    assert df.train_neg_elbo.iloc[-1] < df.train_neg_elbo.iloc[0] - 10
    assert df.test_neg_elbo.iloc[-1] < df.test_neg_elbo.iloc[0] - 10


def test_same_seed_same_model_other_seed_differs(tiny_data):
    a, ha = train_vae(*tiny_data, **cfg())
    b, hb = train_vae(*tiny_data, **cfg())
    c, _ = train_vae(*tiny_data, **cfg(seed=1))
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
        assert not torch.equal(pa, pc)
    assert ha.rows == hb.rows


def test_nan_stops_with_epoch_and_loss(tiny_data):
    x_train, x_test = tiny_data
    bad = x_train.clone()
    bad[3, 5] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"negative ELBO is nan at epoch 1"):
        train_vae(bad, x_test, **cfg())


def test_snapshot_resume_is_bitwise_identical(tiny_data, tmp_path, monkeypatch):
    full, hist_full = train_vae(*tiny_data, **cfg(epochs=5))
    snap = tmp_path / "snap.pt"
    # Interrupt a run right after its epoch-2 snapshot is written, as SIGKILL would.
    killed, restore = _kill_after_first_snapshot(monkeypatch)
    with pytest.raises(killed):
        train_vae(*tiny_data, **cfg(epochs=5), snapshot=snap, snapshot_every=2)
    restore()
    assert snap.exists()
    resumed, hist_resumed = train_vae(*tiny_data, **cfg(epochs=5), snapshot=snap, snapshot_every=2)
    for p, q in zip(full.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
    assert hist_full.rows == hist_resumed.rows


def test_snapshot_for_other_settings_is_ignored(tiny_data, tmp_path):
    snap = tmp_path / "snap.pt"
    train_vae(*tiny_data, **cfg(epochs=3), snapshot=snap, snapshot_every=1)
    assert snap.exists()  # the last snapshot (epoch 2) is left for the caller to delete
    fresh, h1 = train_vae(*tiny_data, **cfg(epochs=3, seed=5))
    other, h2 = train_vae(*tiny_data, **cfg(epochs=3, seed=5), snapshot=snap, snapshot_every=0)
    assert h1.rows == h2.rows


def test_long_training_is_evaluated_at_most_100_times_and_at_its_last_epoch():
    from vae_novelty.train import MAX_EVALUATIONS, is_evaluated

    for epochs in (1, 10, 100, 101, 3000, 3001):
        evaluated = [e for e in range(1, epochs + 1) if is_evaluated(e, epochs)]
        assert evaluated[-1] == epochs
        assert len(evaluated) <= MAX_EVALUATIONS + 1
        if epochs <= MAX_EVALUATIONS:
            assert evaluated == list(range(1, epochs + 1))  # short runs: every epoch
    assert [e for e in range(1, 3001) if is_evaluated(e, 3000)][:2] == [30, 60]


def test_snapshot_clock_every_n_epochs_never_at_the_end_and_not_too_often(monkeypatch):
    from vae_novelty import snapshots as S

    now = [0.0]
    monkeypatch.setattr(S.time, "monotonic", lambda: now[0])
    clock = S.SnapshotClock(every=5, epochs=3000, min_seconds=30)
    due = []
    for epoch in range(1, 3001):
        now[0] += 1.0  # one second per epoch
        if clock.due(epoch):
            due.append(epoch)
    assert due[0] == 5  # the first one as soon as due
    assert all(b - a >= 30 for a, b in zip(due, due[1:]))
    assert all(e % 5 == 0 for e in due) and 3000 not in due
    assert not S.SnapshotClock(every=0, epochs=10).due(5)


def test_training_history_of_a_long_run_has_one_row_per_evaluated_epoch(tiny_data):
    _, history = train_vae(*tiny_data, **cfg(epochs=250))
    epochs = [r["epoch"] for r in history.rows]
    assert epochs == list(range(3, 250, 3)) + [250]


# --------------------------------------------------------------------------- snapshots that belong


def _kill_after_first_snapshot(monkeypatch):
    """Make the next training run die right after writing its first snapshot (as SIGKILL)."""
    import vae_novelty.train as train_mod

    class Killed(Exception):
        pass

    original = train_mod.save_snapshot

    def save_then_die(*args, **kwargs):
        original(*args, **kwargs)
        raise Killed

    monkeypatch.setattr(train_mod, "save_snapshot", save_then_die)
    return Killed, lambda: monkeypatch.setattr(train_mod, "save_snapshot", original)


def _fake_mnist_and_splits():
    import numpy as np

    from vae_novelty.data import Mnist
    from vae_novelty.splits import Split

    rng = np.random.default_rng(0)
    images = (rng.random((120, 784)) * 255).astype(np.uint8)
    labels = (np.arange(120) % 10).astype(np.uint8)
    mnist = Mnist(images, labels, images[:20].copy(), labels[:20].copy())
    # same name, same size, different rows (e.g. another subsample_seed or another MNIST file)
    a = Split("no9", np.arange(0, 60, dtype=np.int64), np.arange(20), 9)
    b = Split("no9", np.arange(60, 120, dtype=np.int64), np.arange(20), 9)
    return mnist, a, b


def test_snapshot_of_other_training_rows_is_not_resumed(tmp_path, monkeypatch, caplog):
    """A snapshot written while training on other rows (same split name, same size, same seed
    and settings) is deleted with a log line, and training starts afresh on the new rows."""
    import logging

    from vae_novelty.model import load_model
    from vae_novelty.training_jobs import ModelJob, train_jobs

    mnist, rows_a, rows_b = _fake_mnist_and_splits()
    settings = TrainSettings((16,), z_dim=2, epochs=3, batch_size=32, learning_rate=1e-3)
    cpu = torch.device("cpu")
    snaps = tmp_path / "snapshots"
    job = ModelJob("no9", 0, tmp_path / "m.pt", tmp_path / "m.history.csv")
    Killed, restore = _kill_after_first_snapshot(monkeypatch)
    with pytest.raises(Killed):
        train_jobs(
            mnist,
            {"no9": rows_a},
            [job],
            settings,
            arch="h16",
            device=cpu,
            snapshot_dir=snaps,
            snapshot_every=1,
        )
    restore()
    snap = snaps / "no9_s0.pt"
    assert snap.exists()
    caplog.set_level(logging.INFO, logger="vae_novelty")
    train_jobs(
        mnist,
        {"no9": rows_b},
        [job],
        settings,
        arch="h16",
        device=cpu,
        snapshot_dir=snaps,
        snapshot_every=1,
    )
    assert "resumed" not in caplog.text
    assert f"discarding snapshot {snap}" in caplog.text and "train_rows" in caplog.text
    fresh = ModelJob("no9", 0, tmp_path / "f.pt", tmp_path / "f.history.csv")
    train_jobs(mnist, {"no9": rows_b}, [fresh], settings, arch="h16", device=cpu)
    got, _ = load_model(job.model_path)
    want, _ = load_model(fresh.model_path)
    for p, q in zip(got.parameters(), want.parameters()):
        assert torch.equal(p, q)
    assert job.history_path.read_bytes() == fresh.history_path.read_bytes()


def test_snapshot_of_other_training_images_is_not_resumed(tiny_data, tmp_path, monkeypatch):
    """train_vae called without row indices fingerprints the training images themselves."""
    x_train, x_test = tiny_data
    snap = tmp_path / "snap.pt"
    Killed, restore = _kill_after_first_snapshot(monkeypatch)
    with pytest.raises(Killed):
        train_vae(x_train, x_test, **cfg(epochs=3), snapshot=snap, snapshot_every=1)
    restore()
    other = x_train.flip(0).contiguous()  # same images, other order: another data order
    _, hist = train_vae(other, x_test, **cfg(epochs=3), snapshot=snap, snapshot_every=0)
    _, hist_fresh = train_vae(other, x_test, **cfg(epochs=3))
    assert hist.rows == hist_fresh.rows
    assert not snap.exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "not a snapshot"])
def test_corrupt_snapshot_is_discarded_and_training_completes(
    tiny_data, tmp_path, monkeypatch, caplog, damage
):
    import logging

    snap = tmp_path / "snap.pt"
    Killed, restore = _kill_after_first_snapshot(monkeypatch)
    with pytest.raises(Killed):
        train_vae(*tiny_data, **cfg(epochs=3), snapshot=snap, snapshot_every=1)
    restore()
    raw = snap.read_bytes()
    if damage == "truncated":
        snap.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        snap.write_bytes(b"\x00not a torch file" * 100)
    elif damage == "empty":
        snap.write_bytes(b"")
    else:
        torch.save({"format": "vae-novelty-snapshot/2", "cfg": None}, snap)
    caplog.set_level(logging.INFO, logger="vae_novelty")
    _, hist = train_vae(*tiny_data, **cfg(epochs=3), snapshot=snap, snapshot_every=0)
    assert f"discarding snapshot {snap}" in caplog.text
    assert not snap.exists()  # not retried on the next run
    _, hist_fresh = train_vae(*tiny_data, **cfg(epochs=3))
    assert hist.rows == hist_fresh.rows


def test_snapshot_that_fails_while_applied_leaves_a_fresh_start(tiny_data, tmp_path, monkeypatch):
    """A snapshot with the right key whose weights do not fit (a half-applied restore must not
    leak into training): discarded, and the run equals an uninterrupted one."""
    snap = tmp_path / "snap.pt"
    Killed, restore = _kill_after_first_snapshot(monkeypatch)
    with pytest.raises(Killed):
        train_vae(*tiny_data, **cfg(epochs=3), snapshot=snap, snapshot_every=1)
    restore()
    payload = torch.load(snap, weights_only=False)
    payload["opt"] = {"state": {}, "param_groups": []}  # model loads, optimizer fails
    torch.save(payload, snap)
    model, hist = train_vae(*tiny_data, **cfg(epochs=3), snapshot=snap, snapshot_every=0)
    fresh, hist_fresh = train_vae(*tiny_data, **cfg(epochs=3))
    assert hist.rows == hist_fresh.rows
    for p, q in zip(model.parameters(), fresh.parameters()):
        assert torch.equal(p, q)
    assert not snap.exists()


def test_progress_is_logged_with_the_time_left(monkeypatch, caplog):
    """One time-left formula for the 15-second notes and the per-epoch log lines."""
    from vae_novelty import train as T

    now = [100.0]
    monkeypatch.setattr(T.time, "perf_counter", lambda: now[0])
    notes = T.ProgressLog("h400.full.s0", epochs=10, every=15)
    now[0] += 10
    with caplog.at_level("INFO", logger="vae_novelty"):
        notes.step(1, 10, 469)  # 10 s since the start: quiet
        now[0] += 10
        notes.step(3, 0, 469)  # 20 s, 2 of 10 epochs: logged, 80 s left
        now[0] += 5
        notes.step(3, 100, 469)  # 5 s after the last: quiet
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["h400.full.s0: epoch 3/10, step 0/469, 20% done, 20.0s so far, about 80s left"]
    now[0] += 15
    assert notes.epoch_done(4) == "40.0s so far, about 60s left"  # 4 of 10 epochs in 40 s
    resumed = T.ProgressLog("h400.full.s0", epochs=10, start_epoch=6)
    now[0] += 10
    assert resumed.epoch_done(7) == "10.0s so far, about 15s left"  # 2 of 5 epochs in 10 s


# found by mutation testing (bench/mutation.sh train; docs/benchmarks/mutation.md)


def test_the_record_names_every_setting_and_an_empty_history_has_its_columns():
    from vae_novelty.hyperparams import TrainSettings
    from vae_novelty.train import History

    assert TrainSettings((4, 2), 3, 5, 16, 1e-3).record(7) == {
        "hidden": [4, 2],
        "z_dim": 3,
        "epochs": 5,
        "batch_size": 16,
        "learning_rate": 1e-3,
        "seed": 7,
    }
    assert History().to_frame().columns.tolist() == ["epoch", "train_neg_elbo", "test_neg_elbo"]
