"""Single-model training: learns, is deterministic, stops on NaN, resumes bitwise."""

from __future__ import annotations

import pytest
import torch

from vae_novelty.train import TrainConfig, TrainingDiverged, train_vae


@pytest.fixture(scope="module")
def tiny_data():
    g = torch.Generator().manual_seed(0)
    # two blobs of "images" so that there is something to learn
    base = torch.rand(2, 784, generator=g)
    x = (base[torch.arange(200) % 2] + 0.1 * torch.rand(200, 784, generator=g)).clamp(0, 1)
    return x[:160], x[160:]


def cfg(**kw):
    base = dict(hidden=[32], z_dim=4, epochs=4, batch_size=32, learning_rate=1e-3, seed=0)
    return TrainConfig(**{**base, **kw})


def test_loss_decreases(tiny_data):
    _, hist = train_vae(*tiny_data, cfg(epochs=6))
    df = hist.to_frame()
    assert list(df.epoch) == [1, 2, 3, 4, 5, 6]
    assert df.train_neg_elbo.iloc[-1] < df.train_neg_elbo.iloc[0] - 10
    assert df.test_neg_elbo.iloc[-1] < df.test_neg_elbo.iloc[0] - 10


def test_same_seed_same_model_other_seed_differs(tiny_data):
    a, ha = train_vae(*tiny_data, cfg())
    b, hb = train_vae(*tiny_data, cfg())
    c, _ = train_vae(*tiny_data, cfg(seed=1))
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
        assert not torch.equal(pa, pc)
    assert ha.rows == hb.rows


def test_nan_stops_with_epoch_and_loss(tiny_data):
    x_train, x_test = tiny_data
    bad = x_train.clone()
    bad[3, 5] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"negative ELBO is nan at epoch 1"):
        train_vae(bad, x_test, cfg())


def test_snapshot_resume_is_bitwise_identical(tiny_data, tmp_path):
    full, hist_full = train_vae(*tiny_data, cfg(epochs=5))
    snap = tmp_path / "snap.pt"

    class Killed(Exception):
        pass

    # Interrupt a run right after its epoch-2 snapshot is written, as SIGKILL would.
    import vae_novelty.train as train_mod

    original = train_mod._save_snapshot

    def save_then_die(*args, **kwargs):
        original(*args, **kwargs)
        raise Killed

    train_mod._save_snapshot = save_then_die
    try:
        with pytest.raises(Killed):
            train_vae(*tiny_data, cfg(epochs=5), snapshot=snap, snapshot_every=2)
    finally:
        train_mod._save_snapshot = original
    assert snap.exists()
    resumed, hist_resumed = train_vae(*tiny_data, cfg(epochs=5), snapshot=snap, snapshot_every=2)
    for p, q in zip(full.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
    assert hist_full.rows == hist_resumed.rows


def test_snapshot_for_other_settings_is_ignored(tiny_data, tmp_path):
    snap = tmp_path / "snap.pt"
    train_vae(*tiny_data, cfg(epochs=3), snapshot=snap, snapshot_every=1)
    assert snap.exists()  # the last snapshot (epoch 2) is left for the caller to delete
    fresh, h1 = train_vae(*tiny_data, cfg(epochs=3, seed=5))
    other, h2 = train_vae(*tiny_data, cfg(epochs=3, seed=5), snapshot=snap, snapshot_every=0)
    assert h1.rows == h2.rows


def test_long_training_is_evaluated_at_most_100_times_and_at_its_last_epoch():
    from vae_novelty.train import MAX_EVALUATIONS, is_evaluated

    for epochs in (1, 10, 100, 101, 3000, 3001):
        evaluated = [e for e in range(1, epochs + 1) if is_evaluated(e, epochs)]
        assert evaluated[-1] == epochs
        assert len(evaluated) <= MAX_EVALUATIONS + 1
        if epochs <= MAX_EVALUATIONS:
            assert evaluated == list(range(1, epochs + 1))     # short runs: every epoch
    assert [e for e in range(1, 3001) if is_evaluated(e, 3000)][:2] == [30, 60]


def test_snapshot_clock_every_n_epochs_never_at_the_end_and_not_too_often(monkeypatch):
    from vae_novelty import train as T

    now = [0.0]
    monkeypatch.setattr(T.time, "monotonic", lambda: now[0])
    clock = T.SnapshotClock(every=5, epochs=3000, min_seconds=30)
    due = []
    for epoch in range(1, 3001):
        now[0] += 1.0                                   # one second per epoch
        if clock.due(epoch):
            due.append(epoch)
    assert due[0] == 5                                  # the first one as soon as due
    assert all(b - a >= 30 for a, b in zip(due, due[1:]))
    assert all(e % 5 == 0 for e in due) and 3000 not in due
    assert not T.SnapshotClock(every=0, epochs=10).due(5)


def test_training_history_of_a_long_run_has_one_row_per_evaluated_epoch(tiny_data):
    _, history = train_vae(*tiny_data, cfg(epochs=250))
    epochs = [r["epoch"] for r in history.rows]
    assert epochs == list(range(3, 250, 3)) + [250]
