"""bench/bench_training.py's measurements: timing on a device, the reference matrix product's
FLOP/s, the matrix-product FLOPs of one image, and the machine (CPU or GPU name, load
average). Imported by bench/bench_training.py."""

from __future__ import annotations

import platform
import time
from pathlib import Path

import torch


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device):
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - t0


def matmul_flops_per_second(device, n, repeats=5):
    """FLOP/s of an n x n x n float32 matrix product (best of ``repeats``, after a warm-up)."""
    g = torch.Generator().manual_seed(0)
    a = torch.rand(n, n, generator=g).to(device)
    b = torch.rand(n, n, generator=g).to(device)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        _, seconds = timed(lambda: torch.mm(a, b), device)
        best = min(best, seconds)
    return 2.0 * n**3 / best


def layer_shapes(hidden, z_dim, x_dim=784):
    enc = list(zip([x_dim, *hidden[:-1]], hidden))
    heads = [(hidden[-1], z_dim)] * 2
    widths = [z_dim, *reversed(hidden), x_dim]
    return enc + heads + list(zip(widths[:-1], widths[1:]))


def flops_per_image(hidden, z_dim):
    """(training, evaluation) matrix-product FLOPs for one image."""
    shapes = layer_shapes(hidden, z_dim)
    fwd = sum(2 * i * o for i, o in shapes)
    grad_w = fwd
    grad_x = fwd - 2 * shapes[0][0] * shapes[0][1]  # no input gradient for the data
    return fwd + grad_w + grad_x, fwd


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average():
    """The 1-minute load average (other processes on a shared machine skew timings)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()} (torch threads: {torch.get_num_threads()})"
