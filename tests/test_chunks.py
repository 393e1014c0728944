"""The chunk iterator and the streaming top-k shared by the Theorem 1 engine, the neighbour
searches and the exact pixel search, against plain loops and sorts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vae_novelty import chunks


def test_topk_ties_prefer_lower_position():
    # exactly equal values: lower position first, across the merge of old and new candidates
    v_old = torch.tensor([[5.0, 3.0, 3.0]], dtype=torch.float64)
    i_old = torch.tensor([[9, 4, 6]])
    v_new = torch.tensor([[3.0, 3.0, 1.0]], dtype=torch.float64)
    i_new = torch.tensor([[12, 2, 13]])
    v, i = chunks.merge_topk(v_old, i_old, v_new, i_new, 4)
    assert i.tolist() == [[9, 2, 4, 6]] and v.tolist() == [[5.0, 3.0, 3.0, 3.0]]
    # more equal values than k inside one chunk: the lowest positions are kept
    logq = torch.tensor([[1.0, 2.0, 2.0, 2.0, 2.0, 0.0]], dtype=torch.float64)
    v, i = chunks.chunk_topk(logq, 3, offset=100)
    assert i.tolist() == [[101, 102, 103]] and v.tolist() == [[2.0, 2.0, 2.0]]


def test_spans_cover_every_position_once_in_order():
    for n, chunk in ((0, 3), (1, 1), (7, 3), (9, 3), (5, 50)):
        got = [i for sl in chunks.spans(n, chunk) for i in range(sl.start, sl.stop)]
        assert got == list(range(n))
        assert all(0 < sl.stop - sl.start <= chunk for sl in chunks.spans(n, chunk))
    assert [(s.start, s.stop) for s in chunks.spans(7, 3)] == [(0, 3), (3, 6), (6, 7)]
    with pytest.raises(ValueError, match="chunk must be >= 1, got 0"):
        list(chunks.spans(4, 0))


def test_plan_overrides_and_caps_the_training_chunk():
    assert chunks.ChunkPlan.fit(10, 20, (4, 8)).sizes == (4, 8)
    assert chunks.ChunkPlan.fit(10, 20, (4, 8), test_chunk=3, train_chunk=5).sizes == (3, 5)
    assert chunks.ChunkPlan.fit(10, 20, (4, 8), train_chunk=500).sizes == (4, 20)
    assert chunks.ChunkPlan.fit(10, 6, (4, 8)).sizes == (4, 6)


def test_blocks_view_one_buffer_and_cover_the_training_rows():
    plan = chunks.ChunkPlan.fit(5, 11, (2, 4))
    buf = plan.buffer(torch.float64)
    assert buf.numel() == 2 * 4
    seen = []
    for cols, block in plan.blocks(2, buf):
        assert block.shape == (2, cols.stop - cols.start)
        assert block.data_ptr() == buf.data_ptr()  # a view, no new allocation
        seen.append((cols.start, cols.stop))
    assert seen == [(0, 4), (4, 8), (8, 11)]
    assert plan.buffer(torch.float64, width=3).numel() == 3 * 4
    assert chunks.ChunkPlan.fit(1, 11, (2, 4)).buffer().numel() == 1 * 4  # fewer test rows


def test_staged_copies_rows_into_the_buffer_as_float64():
    buf = torch.zeros(20, dtype=torch.float64)
    rows = torch.arange(6, dtype=torch.float32).view(2, 3) / 3
    out = chunks.staged(buf, rows)
    assert out.dtype == torch.float64 and out.shape == (2, 3)
    assert out.data_ptr() == buf.data_ptr()
    assert torch.equal(out, rows.double())


@pytest.mark.parametrize("k, chunk", [(1, 1), (3, 4), (5, 7), (40, 13), (2, 40)])
def test_running_topk_against_a_full_sort(k, chunk):
    """Values on a coarse grid (many exact ties, across block boundaries): the k largest of
    each row by (value descending, position ascending), as a plain sort of the whole row."""
    rng = np.random.default_rng(k * 100 + chunk)
    scores = rng.integers(-3, 4, size=(6, 40)).astype(np.float64)
    top = chunks.RunningTopK(6, k, torch.float64)
    for sl in chunks.spans(40, chunk):
        top.add(torch.from_numpy(scores[:, sl]), sl.start)
    kk = min(k, 40)
    for r in range(6):
        want = sorted(range(40), key=lambda i: (-scores[r, i], i))[:kk]
        assert top.index[r].tolist() == want
        assert top.values[r].tolist() == [scores[r, i] for i in want]
