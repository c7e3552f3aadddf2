"""The papers' numbers beside ours: NeuMoSync's Table 1 and Table 2 from
``paper_values.yaml`` (transcribed from the paper excerpt by
``benchmarks/scripts/paper_values.py``; each block names its source)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import yaml

from .run_view import View
from .tables import TABLE1_COLUMNS, _transfer, accuracy_of, has_transfer, md_table

FILE = Path(__file__).with_name("paper_values.yaml")
# our Table 1 column -> the paper's key
TABLE1_KEYS = dict(
    zip(
        [name for name, _ in TABLE1_COLUMNS],
        [
            "BKT_half",
            "BKT_beta",
            "BKT_mean",
            "FKT_half",
            "FKT_beta",
            "FKT_mean",
            "LCA_0",
            "LCA_F",
            "LCA_B",
            "avg_final_accuracy",
        ],
    )
)


@lru_cache(maxsize=1)
def load() -> dict:
    """The stored paper values (``neumosync_table1``, ``neumosync_table2``)."""
    return yaml.safe_load(FILE.read_text())


def _stream_name(view: View, stream: str) -> str:
    for m in view.methods_of(stream):
        for c in view.group(stream, m).cells:
            return str((c.config.get("stream") or {}).get("name", stream))
    return stream


def _with_paper_row(view: View, data: dict) -> Iterator[tuple[str, str, Any, dict]]:
    """(stream, method, its cell group, the paper's values) for every method of every stream
    that the paper's table has and that has transfer measures here."""
    for s in view.streams:
        paper = data["streams"].get(_stream_name(view, s)) or {}
        for m in view.methods_of(s):
            g = view.group(s, m)
            if m in paper and any(has_transfer(c) for c in g.cells):
                yield s, m, g, paper[m]


def table1_beside_paper(view: View) -> str:
    """Per stream and method with the paper's Table 1 row: ours (mean ± 95% t half-width,
    percent) over the paper's value (its parenthesised spread), column by column."""
    data = load()["neumosync_table1"]
    header = ["Stream", "Method", ""] + [name for name, _ in TABLE1_COLUMNS]
    rows = []
    for s, m, g, p in _with_paper_row(view, data):
        rows.append(
            [view.stream_label(s), m, "ours"] + [g.stat(get).fmt() for _, get in TABLE1_COLUMNS]
        )
        rows.append(
            ["", "", "paper"] + [f"{p[k][0]:.2f} ({p[k][1]:.2f})" for k in TABLE1_KEYS.values()]
        )
    if not rows:
        return ""
    return (
        md_table(header, rows)
        + f"\n\nPaper: {data['source']}, at the paper's scale; in parentheses {data['spread']}. "
        "Ours: this preset's protocol (see the suite's presets); the paper's last column is "
        "its average final accuracy, ours the stream's own reading (see Average accuracy)."
    )


def table2_beside_paper(view: View) -> str:
    """MAML and NeuMoSync: LCA_F and accuracy (fractions), ours beside the paper's Table 2."""
    data = load()["neumosync_table2"]
    header = ["Stream", "Method", "LCA_F (ours)", "LCA_F (paper)", "Acc (ours)", "Acc (paper)"]
    rows = []
    for s, m, g, p in _with_paper_row(view, data):
        rows.append(
            [
                view.stream_label(s),
                m,
                g.stat(_transfer("LCA_F")).fmt(1.0),
                f"{p['LCA_F']:.2f}",
                g.stat(accuracy_of).fmt(1.0),
                f"{p['accuracy']:.2f}",
            ]
        )
    if not rows:
        return ""
    return md_table(header, rows) + f"\n\nPaper: {data['source']}, at the paper's scale."


def sections(view: View) -> list[str]:
    """The report's Markdown for the paper comparison tables (empty without data)."""
    md: list[str] = []
    for title, t in (
        ("Table 1: ours beside the paper's", table1_beside_paper(view)),
        ("Table 2: ours beside the paper's", table2_beside_paper(view)),
    ):
        if t:
            md += [f"## {title}", "", t, ""]
    return md


__all__ = ["load", "sections", "table1_beside_paper", "table2_beside_paper"]
