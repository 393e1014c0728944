"""vae_novelty.jobs: the set-up of the per-architecture rules, from plain values."""

from __future__ import annotations

import logging

import pytest
import torch

from vae_novelty.jobs import output_for, start_job


def test_start_job_takes_plain_values(tmp_path):
    threads = torch.get_num_threads()
    try:
        log, device = start_job(
            tmp_path / "logs" / "j.log", 1, "cpu", "train_sweep", {"arch": "h64"}
        )
        assert device == torch.device("cpu") and torch.get_num_threads() == 1
        for handler in log.handlers:
            handler.flush()
        text = (tmp_path / "logs" / "j.log").read_text()
        assert "rule train_sweep, wildcards {'arch': 'h64'}: on cpu (1 threads)" in text
    finally:
        torch.set_num_threads(threads)
        logger = logging.getLogger("vae_novelty")
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()


def test_start_job_names_a_bad_device(tmp_path):
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        start_job(tmp_path / "j.log", 1, "gpu", "r", {})


def test_output_for_finds_exactly_one(tmp_path):
    paths = [str(tmp_path / "a" / "no9_s0.pt"), str(tmp_path / "a" / "no9_s1.pt")]
    assert output_for(paths, "no9_s1.pt") == tmp_path / "a" / "no9_s1.pt"
    assert output_for(paths[0], "no9_s0.pt") == tmp_path / "a" / "no9_s0.pt"
    with pytest.raises(ValueError, match="expected one output named 'x.pt', found 0"):
        output_for(paths, "x.pt")
    with pytest.raises(ValueError, match="found 2"):
        output_for(paths + paths[:1], "no9_s0.pt")
