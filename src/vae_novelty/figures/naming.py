"""Names of figures and their files, without plotting (imported while the workflow is parsed,
so it must not import matplotlib)."""

from __future__ import annotations

from typing import Iterable, Sequence


def hidden_label(hidden: Sequence[int] | str) -> str:
    """Encoder widths as ``400-200-100``."""
    if isinstance(hidden, str):
        return hidden
    return "-".join(str(int(h)) for h in hidden)


def output_paths(stem: str, formats: Iterable[str]) -> list[str]:
    """``stem.png`` first, then every other configured format once."""
    exts = ["png"] + [f for f in formats if f != "png"]
    return [f"{stem}.{ext}" for ext in dict.fromkeys(exts)]


def sweep_figure_number(digit: int) -> int:
    """The paper's numbering: Figure 4 holds out 9, Figures 5-13 hold out 0..8."""
    return 4 if int(digit) == 9 else int(digit) + 5
