"""Drawing helpers shared by every figure: the Agg backend, digit images, labels, saving."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterable, Iterator

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .naming import hidden_label, output_paths  # noqa: E402,F401 (used by the figure modules)
from ..recorded import SETTINGS_SUFFIX  # noqa: E402

IMAGE_SIDE = 28
# Digits are drawn white on black, pixel values in [0, 1] (x / 255), as MNIST is usually shown.
IMAGE_CMAP = "gray"
# Colours of the shallow and deep VAEs (the paper's Figure 2: blue and green).
ROLE_COLOURS = {"shallow": "tab:blue", "deep": "tab:green"}
ROLE_CMAPS = {"shallow": "Blues", "deep": "Greens"}

# The dataset's name in figure labels (config data.name): "MNIST" unless a figure's script
# draws inside ``dataset_name(...)``.
_DATASET = ["MNIST"]


@contextlib.contextmanager
def dataset_name(name: str) -> Iterator[None]:
    """Label the figures drawn inside this block with dataset ``name`` (e.g. Fashion-MNIST)."""
    _DATASET.append(str(name))
    try:
        yield
    finally:
        _DATASET.pop()


def dataset() -> str:
    return _DATASET[-1]


def split_label(split: str) -> str:
    """``full`` -> MNIST^tr, ``no9`` -> MNIST^tr without 9 (as mathtext)."""
    if split == "full":
        return rf"{dataset()}$^{{tr}}$"
    if split == "mini":
        return f"mini-{dataset()}"
    if split.startswith("no") and split[2:].isdigit():
        return rf"{dataset()}$^{{tr}}_{{\setminus {split[2:]}}}$"
    return split


def test_set_label(digit: int) -> str:
    return rf"{dataset()}$^{{te}}_{{{digit}}}$"


def as_image(vec: np.ndarray) -> np.ndarray:
    """A flat 784-pixel MNIST row (row-major, as stored) as a 28 x 28 array, top row first."""
    arr = np.asarray(vec, dtype=np.float32)
    if arr.shape == (IMAGE_SIDE, IMAGE_SIDE):
        return arr
    if arr.size != IMAGE_SIDE * IMAGE_SIDE:
        raise ValueError(f"expected {IMAGE_SIDE * IMAGE_SIDE} pixels, got shape {arr.shape}")
    return arr.reshape(IMAGE_SIDE, IMAGE_SIDE)


def show_digit(
    ax: Axes,
    vec: np.ndarray,
    *,
    title: str | None = None,
    fontsize: float = 7,
    frame_colour: str | None = None,
) -> None:
    """Draw one digit upright (row 0 at the top) with pixel values in [0, 1]."""
    ax.imshow(
        as_image(vec), cmap=IMAGE_CMAP, vmin=0.0, vmax=1.0, origin="upper", interpolation="nearest"
    )
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(frame_colour is not None)
        if frame_colour is not None:
            spine.set_edgecolor(frame_colour)
            spine.set_linewidth(1.5)
    if title is not None:
        ax.set_title(title, fontsize=fontsize, pad=2)


def format_weight(w: float) -> str:
    """A Theorem 1 weight in at most 4 characters: 1.00, 0.37, 3e-04."""
    w = float(w)
    if w >= 0.01 or w == 0.0:
        return f"{w:.2f}"
    return f"{w:.0e}"


def figure_paths(outputs: Iterable[str | os.PathLike]) -> list[str]:
    """A figure rule's outputs but its settings file (:data:`vae_novelty.recorded.SETTINGS_SUFFIX`)."""
    return [str(p) for p in outputs if not str(p).endswith(SETTINGS_SUFFIX)]


def save_figure(fig: Figure, paths: Iterable[str | os.PathLike], dpi: int) -> None:
    """Write ``fig`` to every path (format from the extension), each atomically."""
    from ..io import atomic_path

    for path in paths:
        path = Path(path)
        fmt = path.suffix.lstrip(".").lower()
        with atomic_path(path) as tmp:
            # Fixed metadata keeps PDF/SVG files byte-stable between identical runs.
            metadata = {
                "png": {"Software": None},
                "pdf": {"CreationDate": None},
                "svg": {"Date": None},
            }.get(fmt, {})
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata)


def figure_text(fig: Figure, text: str, *, y: float = 0.005, fontsize: float = 7) -> None:
    """A footnote along the bottom edge of the figure."""
    fig.text(0.5, y, text, ha="center", va="bottom", fontsize=fontsize, color="0.3")


def save_text(path: str | os.PathLike, text: str) -> None:
    from ..io import write_text_atomic

    write_text_atomic(path, text)
