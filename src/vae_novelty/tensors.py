"""Tensor helpers shared by the Theorem 1 engine and the other engines (decoder outputs,
neighbours, ELBO): the device, uploads, float64 input checks, and TF32 switched off."""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch

from .io import select_device

F32 = torch.float32
F64 = torch.float64


@contextlib.contextmanager
def no_tf32() -> Iterator[None]:
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def resolve_device(device) -> torch.device:
    if isinstance(device, torch.device):
        return device
    return select_device(device)


def to_tensor(arr, device: torch.device, dtype=None) -> torch.Tensor:
    """A torch tensor of a numpy array (copied when the array is read-only); a tensor already
    on ``device`` (and of ``dtype``) is used as it is, so that callers can upload an input once
    and pass it to every pass of the engine."""
    if isinstance(arr, torch.Tensor):
        return arr.to(device=device, dtype=dtype or arr.dtype)
    arr = np.asarray(arr)
    if not arr.flags.writeable:
        arr = arr.copy()
    return torch.as_tensor(arr, dtype=dtype, device=device)


def as_f64(name: str, arr, ndim: int = 2) -> np.ndarray:
    out = np.asarray(arr, dtype=np.float64)
    if out.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {out.shape}")
    if not np.isfinite(out).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return out


def array_shape(arr) -> tuple[int, ...]:
    """Shape of a numpy array, array-like or torch tensor (on any device)."""
    return tuple(arr.shape) if isinstance(arr, torch.Tensor) else np.shape(arr)
