"""Figures a reviewer reads at a glance: one colour per method in every report, y-ranges
fitted to the data, accuracy-matrix heatmaps, the LCA curves behind Table 1."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from cell_dicts import cell_dict  # noqa: E402

from avalanche_neumod.reporting import View, figures  # noqa: E402


def _cells(methods, at_end=(0.92, 0.921, 0.919), matrix=None, measures=None):
    out = []
    for m in methods:
        for seed in (0, 1):
            c = cell_dict(
                "pm",
                m,
                seed,
                metrics={
                    "accuracy_at_end": list(at_end),
                    "accuracy_matrix": matrix or [[0.9, 0.1], [0.5, 0.8]],
                },
                measures=measures,
            )
            out.append(c)
    return out


def test_a_method_has_one_colour_in_every_report():
    a = figures.method_colours(["Naive", "CBP", "NeuMoSync"])
    b = figures.method_colours(["NeuMoSync", "EWC", "my variant", "Naive"])
    assert a["NeuMoSync"] == b["NeuMoSync"] and a["Naive"] == b["Naive"]
    assert figures.method_colour("my variant") == figures.method_colour("my variant")
    known = [figures.method_colour(m) for m in ("Naive", "EWC", "CBP", "CReLU", "ReDo")]
    assert len(set(map(str, known))) == 5


def test_a_flat_curve_gets_a_fitted_y_range(tmp_path, monkeypatch):
    """A panel of curves near 92 % is not drawn on 0-100 (a flat line there says nothing)."""
    seen = []
    save = figures._save

    def keep(fig, out, name, bottom=0.0):
        seen.extend(ax.get_ylim() for ax in fig.axes if ax.get_visible())
        return save(fig, out, name, bottom)

    monkeypatch.setattr(figures, "_save", keep)
    assert figures.accuracy_at_end(View(_cells(["Naive", "CBP"])), tmp_path) is not None
    (lo, hi), *_ = seen
    assert 85 < lo < 92 < hi < 100


def test_accuracy_matrix_heatmaps(tmp_path):
    p = figures.accuracy_matrices(View(_cells(["Naive", "CBP"])), tmp_path)
    assert p is not None and p.stat().st_size > 5000
    # a one-experience stream has no matrix to show
    assert figures.accuracy_matrices(View(_cells(["Naive"], matrix=[[0.5]])), tmp_path) is None
    plt.close("all")


def test_lca_curves_behind_table_1(tmp_path):
    beta = 4
    rows = [[0.1 + 0.1 * b for b in range(beta + 1)] for _ in range(3)]
    t = {
        "transfer": {
            "beta": beta,
            "tasks": [0, 1, 2],
            "A_main": rows,
            "A_final": rows,
            "A_ref": rows,
            "final_acc": [],
            "end_acc": [],
        }
    }
    p = figures.lca_curves(View(_cells(["Naive", "NeuMoSync"], measures=t)), tmp_path)
    assert p is not None and p.stat().st_size > 5000
    assert figures.lca_curves(View(_cells(["Naive"])), tmp_path) is None
    assert figures._lca_curve(rows, "forward", 3) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
