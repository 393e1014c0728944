"""The ensemble trainer: every member follows the trajectory of the same model trained alone.

- One member: bitwise identical to ``train_vae`` on the CPU (parameters and history).
- Several members with different training-set sizes and seeds: each matches its solo run to
  float32 rounding. Tolerance: 1e-5 absolute on every parameter and 1e-5 relative on every
  history value. Why: a batched kernel may round a few elements differently from the same
  kernel on one member's tensor (SIMD body vs scalar tail, a padded batch's longer sums, a
  different split of small products across threads), i.e. relative differences of ~1e-7 in
  a gradient; Adam's normalised updates keep their effect on a weight at ~1e-7 to 1e-6 over
  these runs (the largest seen here: 1e-6). 1e-5 leaves a margin for other CPUs yet is 100
  times smaller than a single Adam step (learning rate 1e-3), so a missed or extra update, a
  wrong data order or a wrong noise stream cannot pass.
- A member whose epoch has fewer batches is not touched while the others finish theirs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from vae_novelty.data import Mnist
from vae_novelty.ensemble import EnsembleMember, train_ensemble
from vae_novelty.hyperparams import FIELDS, TrainSettings
from vae_novelty.model import load_model
from vae_novelty.splits import Split
from vae_novelty.snapshots import EnsembleState
from vae_novelty.stacked import StackedAdam
from vae_novelty.train import TrainingDiverged, train_vae
from vae_novelty.training_jobs import ModelJob, train_ensemble_jobs

ATOL_PARAM = 1e-5
RTOL_HISTORY = 1e-5


@pytest.fixture(scope="module")
def x_all():
    g = torch.Generator().manual_seed(0)
    base = torch.rand(3, 784, generator=g)  # three blobs, so that there is something to learn
    return (base[torch.arange(240) % 3] + 0.2 * torch.rand(240, 784, generator=g)).clamp(0, 1)


@pytest.fixture(scope="module")
def x_test(x_all):
    return x_all[:40].flip(1).contiguous()


def solo(x_all, x_test, idx, seed, **kw):
    cfg = TrainSettings(
        **{**dict(hidden=[32, 16], z_dim=4, epochs=3, batch_size=32, learning_rate=1e-3), **kw}
    )
    return train_vae(x_all[idx], x_test, cfg, seed=seed)


def ensemble(x_all, x_test, specs, **kw):
    members = [
        EnsembleMember(idx, x_test, seed, tag=f"m{i}") for i, (idx, seed) in enumerate(specs)
    ]
    args = {**dict(hidden=[32, 16], z_dim=4, epochs=3, batch_size=32, learning_rate=1e-3), **kw}
    settings = TrainSettings(**{k: args.pop(k) for k in FIELDS})
    return train_ensemble(x_all, members, settings, **args)


@pytest.mark.parametrize(
    "n, seed, kw",
    [
        (160, 0, dict(hidden=[32], batch_size=32)),  # full batches only
        (173, 7, dict(hidden=[48, 24, 12], z_dim=3, batch_size=50)),  # a short last batch
        (100, 3, dict(epochs=5, batch_size=100)),  # one batch per epoch (mini)
    ],
)
def test_one_member_is_bitwise_train_vae(x_all, x_test, n, seed, kw):
    idx = torch.randperm(240, generator=torch.Generator().manual_seed(seed))[:n]
    ((model, hist),) = ensemble(x_all, x_test, [(idx, seed)], **kw)
    ref, ref_hist = solo(x_all, x_test, idx, seed, **kw)
    assert [k for k, _ in model.named_parameters()] == [k for k, _ in ref.named_parameters()]
    for p, q in zip(model.parameters(), ref.parameters()):
        assert torch.equal(p, q)
    assert hist.rows == ref_hist.rows


def test_members_of_different_sizes_match_their_solo_runs(x_all, x_test):
    # 7 full batches / 3 full + 4 images / 1 full + 13 images: padding and inactive members
    specs = [(torch.arange(224), 0), (torch.arange(0, 200, 2), 1), (torch.arange(100, 145), 2)]
    results = ensemble(x_all, x_test, specs)
    for (idx, seed), (model, hist) in zip(specs, results):
        ref, ref_hist = solo(x_all, x_test, idx, seed)
        for p, q in zip(model.parameters(), ref.parameters()):
            torch.testing.assert_close(p, q, rtol=0, atol=ATOL_PARAM)
        got, want = hist.to_frame(), ref_hist.to_frame()
        assert list(got.epoch) == list(want.epoch) == [1, 2, 3]
        np.testing.assert_allclose(
            got[["train_neg_elbo", "test_neg_elbo"]],
            want[["train_neg_elbo", "test_neg_elbo"]],
            rtol=RTOL_HISTORY,
        )
    # the members really are different models
    assert not torch.allclose(results[0][0].decoder[0].weight, results[1][0].decoder[0].weight)


def test_inactive_member_is_not_updated(x_all, x_test, monkeypatch):
    """Member 0 has 2 batches per epoch, member 1 has 5: during member 1's steps 3-5, member 0's
    weights and Adam state must stay bit for bit what they were after its own 2nd step."""
    seen = []
    original = StackedAdam.step

    def spy(self, grads, active=None, active_index=None):
        if active_index is not None:  # the device index the trainer made once, as a list
            assert active_index.tolist() == list(active)
        original(self, grads, active, active_index)
        seen.append(
            (
                [t[0].clone() for t in self.params + self.exp_avg + self.exp_avg_sq],
                self.steps.tolist(),
                None if active is None else list(active),
            )
        )

    monkeypatch.setattr(StackedAdam, "step", spy)
    specs = [(torch.arange(64), 4), (torch.arange(64, 224), 5)]
    ensemble(x_all, x_test, specs, epochs=2)
    assert len(seen) == 10  # 5 steps per epoch
    assert [s[1] for s in seen[:5]] == [[1, 1], [2, 2], [2, 3], [2, 4], [2, 5]]
    assert [s[2] for s in seen[:5]] == [None, None, [1], [1], [1]]
    assert seen[5][1] == [3, 6] and seen[9][1] == [4, 10]
    after_own_steps = seen[1][0]
    for state, *_ in seen[2:5]:
        for a, b in zip(state, after_own_steps):
            assert torch.equal(a, b)
    assert not torch.equal(seen[5][0][0], after_own_steps[0])  # next epoch: updated again


@pytest.mark.parametrize("per_member", [True, False])
def test_stacked_adam_equals_torch_adam_per_member(per_member):
    g = torch.Generator().manual_seed(1)
    shapes = [(400, 784), (400,), (3, 5)]
    stacked = [torch.randn(3, *s, generator=g).requires_grad_() for s in shapes]
    alone = [[p[m].detach().clone().requires_grad_() for p in stacked] for m in range(3)]
    adam = StackedAdam(stacked, 3, lr=1e-3, max_steps=10, per_member=per_member)
    opts = [torch.optim.Adam(ps, lr=1e-3, foreach=False) for ps in alone]
    for active in (None, [0, 2], [1], None, [2]):
        grads = [torch.randn(3, *s, generator=g) for s in shapes]
        members = list(range(3)) if active is None else active
        adam.step([gr[members] for gr in grads], active)  # the active members' gradients
        for m in members:
            for p, gr in zip(alone[m], grads):
                p.grad = gr[m].clone()
            opts[m].step()
    assert adam.steps.tolist() == [3, 3, 4]
    for m in range(3):
        for p, q in zip(stacked, alone[m]):
            assert torch.equal(p[m], q)


def test_nan_member_stops_with_its_name_epoch_and_loss(x_all, x_test):
    bad = x_all.clone()
    bad[100, 5] = float("nan")
    specs = [(torch.arange(64), 0), (torch.arange(64, 128), 1)]
    with pytest.raises(
        TrainingDiverged,
        match=r"^m1: training diverged: training negative "
        r"ELBO is nan at epoch 1",
    ):
        ensemble(bad, x_test, specs)


# --------------------------------------------------------------------------- written files


@pytest.fixture
def fake_mnist():
    rng = np.random.default_rng(0)
    labels = np.arange(300) % 10
    images = (rng.random((300, 784)) * 255 * (labels[:, None] / 9 * 0.5 + 0.5)).astype(np.uint8)
    test_labels = np.arange(40) % 10
    return Mnist(
        images, labels.astype(np.uint8), images[:40][::-1].copy(), test_labels.astype(np.uint8)
    )


def _splits(mnist):
    all_idx = np.arange(len(mnist.train_labels))
    test9 = np.flatnonzero(mnist.test_labels == 9)
    return {
        "full": Split("full", all_idx, np.arange(40), -1),
        "no9": Split("no9", all_idx[mnist.train_labels != 9], test9, 9),
    }


def _jobs(root, names):
    return [ModelJob(s, 0, root / f"{s}_s0.pt", root / f"{s}_s0.history.csv") for s in names]


def test_ensemble_jobs_write_the_files_train_jobs_writes(fake_mnist, tmp_path):
    """Through the one entry point, train_architecture: ensemble or one after the other."""
    from vae_novelty.training_jobs import train_architecture

    settings = TrainSettings((16,), 2, epochs=2, batch_size=64, learning_rate=1e-3)
    splits = _splits(fake_mnist)
    seq, ens = _jobs(tmp_path / "seq", ["no9"]), _jobs(tmp_path / "ens", ["no9"])
    cpu = torch.device("cpu")
    train_architecture(fake_mnist, splits, seq, settings, arch="h16", device=cpu, ensemble=False)
    train_architecture(fake_mnist, splits, ens, settings, arch="h16", device=cpu, ensemble=True)
    a, meta_a = load_model(seq[0].model_path, expect_hidden=[16], expect_z_dim=2)
    b, meta_b = load_model(ens[0].model_path, expect_hidden=[16], expect_z_dim=2)
    for (ka, pa), (kb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(pa, pb)
    assert seq[0].history_path.read_bytes() == ens[0].history_path.read_bytes()
    assert (meta_a["trainer"], meta_b["trainer"]) == ("sequential", "ensemble")
    drop = ("trainer", "code_version")
    assert {k: v for k, v in meta_a.items() if k not in drop} == {
        k: v for k, v in meta_b.items() if k not in drop
    }


def test_ensemble_jobs_write_every_member(fake_mnist, tmp_path):
    splits = _splits(fake_mnist)
    jobs = _jobs(tmp_path, ["full", "no9"])
    settings = TrainSettings((16,), 2, epochs=2, batch_size=64, learning_rate=1e-3)
    train_ensemble_jobs(fake_mnist, splits, jobs, settings, arch="h16", device=torch.device("cpu"))
    for job in jobs:
        _, meta = load_model(job.model_path, expect_hidden=[16], expect_z_dim=2)
        assert meta["model_id"] == f"h16.{job.split}.s0"
        assert meta["n_train"] == len(splits[job.split].train_idx)
        hist = pd.read_csv(job.history_path)
        assert list(hist.columns) == ["epoch", "train_neg_elbo", "test_neg_elbo"]
        assert list(hist.epoch) == [1, 2] and np.isfinite(hist.to_numpy()).all()


# --------------------------------------------------------------------------- GPU only

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_cuda_one_member_matches_train_vae(x_all, x_test):
    dev = torch.device("cuda")
    idx = torch.arange(173)
    ((model, hist),) = ensemble(x_all.to(dev), x_test.to(dev), [(idx, 0)], batch_size=50)
    ref, ref_hist = solo(x_all.to(dev), x_test.to(dev), idx.to(dev), 0, batch_size=50)
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=ATOL_PARAM)
    np.testing.assert_allclose(
        hist.to_frame().to_numpy(), ref_hist.to_frame().to_numpy(), rtol=RTOL_HISTORY
    )


@cuda
def test_cuda_graphs_give_the_eager_result(x_all, x_test):
    dev = torch.device("cuda")
    specs = [(torch.arange(224), 0), (torch.arange(0, 200, 2), 1)]
    eager = ensemble(x_all.to(dev), x_test.to(dev), specs)
    graphed = ensemble(x_all.to(dev), x_test.to(dev), specs, cuda_graphs=True)
    # the same kernels, but cuBLAS may pick other algorithms under capture: same tolerance
    for (a, ha), (b, hb) in zip(eager, graphed):
        for p, q in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(p, q, rtol=0, atol=ATOL_PARAM)
        np.testing.assert_allclose(
            ha.to_frame().to_numpy(), hb.to_frame().to_numpy(), rtol=RTOL_HISTORY
        )


def test_ensemble_snapshot_resume_is_bitwise_identical(x_all, x_test, tmp_path, monkeypatch):
    """Interrupt an ensemble right after its epoch-2 snapshot (as a SIGKILL would) and resume:
    every member ends bitwise equal to an uninterrupted run, history included."""
    specs = [(torch.arange(224), 0), (torch.arange(100, 145), 2)]
    full = ensemble(x_all, x_test, specs, epochs=4)
    snap = tmp_path / "ensemble.pt"
    _snapshot_then_die(
        monkeypatch,
        lambda: ensemble(x_all, x_test, specs, epochs=4, snapshot=snap, snapshot_every=2),
    )
    assert snap.exists()
    resumed = ensemble(x_all, x_test, specs, epochs=4, snapshot=snap, snapshot_every=2)
    for (m_full, h_full), (m_res, h_res) in zip(full, resumed):
        for p, q in zip(m_full.parameters(), m_res.parameters()):
            assert torch.equal(p, q)
        assert h_full.rows == h_res.rows
    # a snapshot written for other settings (another seed) is ignored, not misapplied
    other = ensemble(
        x_all,
        x_test,
        [(torch.arange(224), 5), (torch.arange(100, 145), 2)],
        epochs=4,
        snapshot=snap,
        snapshot_every=0,
    )
    alone = ensemble(x_all, x_test, [(torch.arange(224), 5), (torch.arange(100, 145), 2)], epochs=4)
    for p, q in zip(other[0][0].parameters(), alone[0][0].parameters()):
        assert torch.equal(p, q)


# --------------------------------------------------------------------------- snapshots that belong


def _snapshot_then_die(monkeypatch, run):
    """Run ``run()`` until its first snapshot is written, then stop it (as SIGKILL would)."""

    original = EnsembleState.save

    class Killed(Exception):
        pass

    def save_then_die(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise Killed

    monkeypatch.setattr(EnsembleState, "save", save_then_die)
    with pytest.raises(Killed):
        run()
    monkeypatch.setattr(EnsembleState, "save", original)


def test_ensemble_snapshot_of_other_training_rows_is_not_resumed(
    x_all, x_test, tmp_path, monkeypatch, caplog
):
    """Same tags, seeds, sizes and settings, but member 1 trains on other rows: the snapshot
    is deleted with a log line and every member trains from scratch."""
    import logging

    snap = tmp_path / "ensemble.pt"
    before = [(torch.arange(64), 0), (torch.arange(64, 128), 1)]
    after = [(torch.arange(64), 0), (torch.arange(128, 192), 1)]
    _snapshot_then_die(
        monkeypatch,
        lambda: ensemble(x_all, x_test, before, epochs=3, snapshot=snap, snapshot_every=1),
    )
    assert snap.exists()
    caplog.set_level(logging.INFO, logger="vae_novelty")
    resumed = ensemble(x_all, x_test, after, epochs=3, snapshot=snap, snapshot_every=0)
    assert "resumed" not in caplog.text
    assert f"discarding snapshot {snap}" in caplog.text and "train_rows" in caplog.text
    assert not snap.exists()
    fresh = ensemble(x_all, x_test, after, epochs=3)
    for (m_a, h_a), (m_b, h_b) in zip(resumed, fresh):
        for p, q in zip(m_a.parameters(), m_b.parameters()):
            assert torch.equal(p, q)
        assert h_a.rows == h_b.rows


@pytest.mark.parametrize("damage", ["truncated", "wrong tensors"])
def test_corrupt_ensemble_snapshot_is_discarded_and_training_completes(
    x_all, x_test, tmp_path, monkeypatch, caplog, damage
):
    import logging

    snap = tmp_path / "ensemble.pt"
    specs = [(torch.arange(64), 0), (torch.arange(64, 128), 1)]
    _snapshot_then_die(
        monkeypatch,
        lambda: ensemble(x_all, x_test, specs, epochs=3, snapshot=snap, snapshot_every=1),
    )
    if damage == "truncated":
        raw = snap.read_bytes()
        snap.write_bytes(raw[: len(raw) // 3])
    else:  # right key, but tensors that do not fit: must not leave a half-restored state
        payload = torch.load(snap, weights_only=False)
        payload["tensors"] = payload["tensors"][:3] + [torch.zeros(7)]
        torch.save(payload, snap)
    caplog.set_level(logging.INFO, logger="vae_novelty")
    got = ensemble(x_all, x_test, specs, epochs=3, snapshot=snap, snapshot_every=0)
    assert f"discarding snapshot {snap}" in caplog.text
    assert not snap.exists()
    want = ensemble(x_all, x_test, specs, epochs=3)
    for (m_a, h_a), (m_b, h_b) in zip(got, want):
        for p, q in zip(m_a.parameters(), m_b.parameters()):
            assert torch.equal(p, q)
        assert h_a.rows == h_b.rows
