"""The per-model summary table as a self-contained HTML page (for the Snakemake report)."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

CSS = """
body { font-family: sans-serif; font-size: 13px; margin: 12px; }
table { border-collapse: collapse; }
th, td { padding: 3px 7px; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
th { background: #f2f2f2; position: sticky; top: 0; }
td.text { text-align: left; }
tr:hover td { background: #f7f7ff; }
p.note { color: #444; max-width: 70em; }
"""


def _cell(value) -> tuple[str, bool]:
    """Formatted value and whether it is text (left-aligned)."""
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return "", False
        return (f"{value:.3g}" if abs(value) < 1e4 else f"{value:,.0f}"), False
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if abs(int(value)) >= 1e4 else str(int(value)), False
    return html.escape(str(value)), True


def summary_html(
    df: pd.DataFrame, title: str = "Per-model summary", note: str | None = None
) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for v in row:
            text, is_text = _cell(v)
            cells.append(f'<td class="text">{text}</td>' if is_text else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    note_html = f'<p class="note">{html.escape(note)}</p>' if note else ""
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h3>{html.escape(title)}</h3>{note_html}<table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></body></html>\n"
    )
