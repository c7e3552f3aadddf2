"""Reports: a tiny suite end to end, and the papers' tables from saved results."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from cell_dicts import cell_dict

from avalanche_neumod.experiment.launch import run_suite
from avalanche_neumod.experiment.run_folder import load_results, write_json_atomic
from avalanche_neumod.experiment.suite import load_suite
from avalanche_neumod.reporting import View, ngm_study, tables, write_report
from avalanche_neumod.reporting.claims import claims


def _row(md: str, row: str) -> list[str]:
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == row:
            return cells
    raise AssertionError(f"no row {row!r} in\n{md}")


def _pm(vals, scale=100.0) -> str:
    """``mean ± h`` with h the 95% Student-t half-width, computed here independently."""
    from scipy import stats as sps

    v = np.asarray(vals, dtype=float)
    h = sps.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return f"{v.mean() * scale:.2f} ± {h * scale:.2f}"


def _cell_value(md: str, row: str, col: int) -> str:
    return _row(md, row)[col]


def test_tiny_suite_end_to_end(tiny_suite, tmp_path):
    run, rep = tmp_path / "runs" / "tiny", tmp_path / "reports" / "tiny"
    suite = load_suite(tiny_suite, "two_seeds")
    command = f"neumod run {tiny_suite} --preset two_seeds --out {run}"
    run_suite(suite, str(run), progress=False, command=command)
    path = write_report(run, rep)
    md = path.read_text()
    results = load_results(run)
    assert len(results) == 12

    # the final-accuracy table's numbers are the JSON results' mean (std) over seeds
    section = md.split("## Average accuracy")[1].split("##")[0]
    for col, stream in ((1, "toy"), (2, "toy2")):
        for method in ("FastNaive", "Naive"):
            accs = [
                r["metrics"]["avg_final_accuracy"]
                for r in results
                if r["config"]["stream_key"] == stream and r["config"]["method_key"] == method
            ]
            assert len(accs) == 2
            want = _pm(accs)
            assert _cell_value(section, method, col) == want
        assert _cell_value(section, "Boom", col) == "diverged (2/2)"
    rows = [ln.split("|")[1].strip() for ln in section.splitlines() if ln.startswith("| ")]
    assert rows[1:] == ["FastNaive", "Naive", "Boom"]  # the suite's order, not sorted
    assert "`toy__Boom__seed0`: **diverged**" in md

    # figures exist, are embedded, and nothing else is referenced
    refs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert {"accuracy_per_step.png", "final_accuracy.png", "accuracy_at_end.png"} <= set(refs)
    for ref in refs:
        assert (rep / ref).stat().st_size > 5000
    # the command of the run is recorded, as given
    assert re.search(rf"^- `{re.escape(command)}` \(local, jobs 1\): started ", md, re.M), md
    assert "Versions: " in md and "torch" in md

    # a report is a function of the saved results: regenerating gives the same text
    assert write_report(run, tmp_path / "again").read_text() == md


def _cell(stream, method, seed, status="ok", name=None, acc=0.5, measures=None, metrics=None):
    return cell_dict(
        stream, method, seed, status=status, name=name, acc=acc, measures=measures, metrics=metrics
    )


def _summary(values):
    beta = len(values) - 1
    return {
        "b": values,
        "half": values[beta // 2],
        "beta": values[beta],
        "mean": sum(values) / len(values),
    }


def _transfer(fkt, bkt, lca_0, lca_f, lca_b):
    """A stored transfer record (arrays left empty: tables read the stored scores only)."""
    return {
        "transfer": {
            "beta": len(fkt) - 1,
            "tasks": [0, 1, 2],
            **{k: [] for k in ("A_main", "A_final", "A_ref", "final_acc", "end_acc")},
            "FKT": _summary(fkt),
            "BKT": _summary(bkt),
            "LCA_0": lca_0,
            "LCA_0_F": lca_0,
            "LCA_0_B": lca_0,
            "LCA_F": lca_f,
            "LCA_B": lca_b,
            "AvgFinalAcc": None,
            "AvgEndAcc": None,
        }
    }


def test_table1_and_table2_from_saved_results():
    beta = 4
    rs = []
    for seed, shift in ((0, 0.0), (1, 0.02)):
        fkt = [0.01 * b + shift for b in range(beta + 1)]
        bkt = [0.02 * b + shift for b in range(beta + 1)]
        rs.append(
            _cell(
                "pm",
                "NeuMoSync",
                seed,
                acc=0.7 + shift,
                measures=_transfer(fkt, bkt, 0.3, 0.35 + shift, 0.4),
            )
        )
        rs.append(
            _cell(
                "pm",
                "CBP",
                seed,
                acc=0.6,
                measures=_transfer([0.0] * 5, [0.01] * 5, 0.3, 0.3, 0.31),
            )
        )
        rs.append(
            _cell(
                "pm",
                "MAML",
                seed,
                acc=0.5,
                measures=_transfer([0.0] * 5, [0.0] * 5, 0.2, 0.24, 0.2),
            )
        )
    rs.append(_cell("pm", "CBP", 2, status="diverged"))
    view = View(rs)
    t1 = tables.table1(view)
    assert "**pm** (β = 4)" in t1
    row = _row(t1, "NeuMoSync")
    # BKT_{β/2} = bkt[2] = 0.04 + shift; BKT_β = bkt[4] = 0.08 + shift; mean = 0.04 + shift
    assert row[1] == _pm([0.04, 0.06])  # mean of 4% and 6%, 95% t-interval over 2 seeds
    assert row[2] == _pm([0.08, 0.10])
    assert row[3] == _pm([0.04, 0.06])
    assert row[4] == _pm([0.02, 0.04])  # FKT at b=2: 2% + shift
    assert row[7] == "30.00 ± 0.00"
    assert row[8] == _pm([0.35, 0.37])
    assert row[10] == _pm([0.70, 0.72])
    cbp = _row(t1, "CBP")
    assert cbp[10] == "60.00 ± 0.00 [1/3 diverged]"
    t2 = tables.table2(view)
    assert _cell_value(t2, "MAML", 1) == "0.24 ± 0.00"
    assert _cell_value(t2, "NeuMoSync", 2) == _pm([0.70, 0.72], 1.0)
    text = claims(view)
    # two paired seeds: the difference is stated, no verdict is drawn from it
    assert "NeuMoSync's LCA_F vs CBP: +6.00 points" in text
    assert "vs MAML: +0.12 [" in text
    assert "better" not in text.replace("Detectably better than 0", "")
    assert "too few seeds" in text


def test_table1_prints_the_stored_summaries_not_its_own():
    """Reporting formats stored scores: a stored FKT/BKT summary or LCA that does not follow
    from the stored per-b lists is printed as stored (nothing is recomputed)."""
    m = _transfer([0.0] * 5, [0.0] * 5, 0.1, 0.2, 0.3)
    m["transfer"]["FKT"].update(half=0.11, beta=0.12, mean=0.13)
    m["transfer"]["BKT"].update(half=0.21, beta=0.22, mean=0.23)
    view = View([_cell("pm", "X", 0, measures=m)])
    row = _row(tables.table1(view), "X")
    assert row[1:10] == [
        f"{v:.2f} (n=1)" for v in (21.0, 22.0, 23.0, 11.0, 12.0, 13.0, 10.0, 20.0, 30.0)
    ]


def _sg(avg_acc, avg_min_acc, wc_acc, avg_sg):
    sc = {"avg_ACC": avg_acc, "avg_min_ACC": avg_min_acc, "WC_ACC": wc_acc, "avg_SG": avg_sg}
    sc.update(avg_SG_abs=avg_sg, avg_recovery=1.0)
    curves = {
        "0": {"x": [0, 1, 2, 3, 4], "acc": [0.1, 0.8, 0.3, 0.6, 0.7]},
        "1": {"x": [2, 3, 4], "acc": [0.1, 0.5, 0.6]},
    }
    return {
        "stability_gap": {
            "scores": {"ngm": sc, "delange": sc},
            "curves": curves,
            "boundaries": [0, 2],
        }
    }


def test_ngm_table_claims_and_figures(tmp_path):
    rs = [
        _cell("sm", "NGM-SGD", 0, name="NGMSGD", measures=_sg(0.9, 0.8, 0.82, 0.1)),
        _cell("sm", "NGM-SGD", 1, name="NGMSGD", measures=_sg(0.8, 0.7, 0.72, 0.2)),
        _cell("sm", "SGD", 0, name="FastNaive", measures=_sg(0.9, 0.6, 0.65, 0.3)),
    ]
    rs[0]["measures"]["history"] = {
        "gains": {
            "iteration": [1, 2, 3, 4],
            "layers": {"0": [1.0, 1.2, 1.1, 1.05]},
            "boundaries": [0, 2],
        }
    }
    rs[0]["curves"] = {"train": {"boundaries": [0, 2]}}
    rs[0]["measures"]["history"]["alphas"] = {
        "layers": ["0", "2"],
        "iterations": [
            {
                "iteration": i,
                "experience": i // 2,
                "layers": {
                    lay: {k: [0.1 * i + j, 0.0] for k in ("sm", "wc", "gain", "shift")}
                    for j, lay in enumerate(["0", "2"])
                },
            }
            for i in range(4)
        ],
        "experiences": [],
    }
    view = View(rs)
    t = tables.ngm_table(view)
    assert _cell_value(t, "NGM-SGD", 1) == _pm([0.8, 0.9])
    assert _cell_value(t, "NGM-SGD", 4) == _pm([0.1, 0.2])
    assert _cell_value(t, "SGD", 4) == "30.00 (n=1)"
    # NGM-SGD's claims are the stability-gap section's (one place), not the generic list's
    assert "avg-SG" not in claims(view)
    lines = ngm_study.claim_lines(view, "sm")
    # one shared seed (0): -20 points of avg-SG, too few seeds for a verdict
    assert len(lines) == 1 and lines[0].startswith("- vs SGD: avg-SG -20.0 points")
    assert "**too few seeds**" in lines[0]
    from avalanche_neumod.reporting import figures

    assert figures.ngm_gains(view, tmp_path).stat().st_size > 5000
    assert figures.neumosync_alphas(view, tmp_path).stat().st_size > 5000
    assert figures.recurring_accuracy(view, tmp_path) is None  # no data, no figure


def test_report_from_saved_json_only(tmp_path):
    """``neumod report`` needs nothing but the cell files (no manifest, no training)."""
    for r in (
        _cell("a", "X", 0, acc=0.25),
        _cell("a", "X", 1, acc=0.75),
        _cell("a", "Y", 0, status="failed"),
    ):
        r["error"] = "ValueError: boom" if r["status"] == "failed" else None
        write_json_atomic(tmp_path / "run" / "cells" / f"{r['cell_id']}.json", r)
    md = write_report(tmp_path / "run", tmp_path / "rep").read_text()
    assert _cell_value(md.split("## Average accuracy")[1], "X", 1) == _pm([0.25, 0.75])
    assert _cell_value(md.split("## Average accuracy")[1], "Y", 1) == "failed (1/1)"
    assert "`a__Y__seed0`: **failed**: ValueError: boom" in md


def test_stat_formatting():
    from avalanche_neumod.reporting.run_view import Stat

    assert Stat([0.5, math.nan], 3, n_diverged=1).fmt() == "50.00 (n=1) [1/3 diverged]"
    assert Stat([0.4, 0.6], 2).fmt(spread="std") == "50.00 (10.00)"  # std kept: ddof 0
    # 95% t-interval: t_{0.975, 2} = 4.303, s = 0.1, n = 3 -> 24.84 points
    assert Stat([0.4, 0.5, 0.6], 3).fmt() == "50.00 ± 24.84"
    assert Stat([], 2, n_failed=2).fmt() == "failed (2/2)"
    assert Stat([0.123], 1).fmt(1.0, 3, std=False) == "0.123"
    with pytest.raises(AssertionError):
        _cell_value("| a | b |", "c", 1)


@pytest.mark.parametrize(
    "name, make",
    [
        ("transfer", lambda v: [tables.table1(v), tables.table2(v)]),
        (
            "stability_gap_suite",
            lambda v: (
                [ngm_study.score_table(v, s) for s in ngm_study.sg_streams(v)]
                + [tables.ngm_table(v, "delange")]
            ),
        ),
        (
            "stability_gap",
            lambda v: [ngm_study.score_table(v, s) for s in ngm_study.sg_streams(v)],
        ),
    ],
)
def test_committed_run_folders_render_their_committed_tables(name, make):
    """Committed run folders (of any schema this library reads: schema 1 is migrated) give
    the score tables their committed report prints."""
    from pathlib import Path

    from avalanche_neumod.experiment.run_folder import load_manifest

    run = Path(__file__).resolve().parents[2] / "reports" / name / "run"
    view = View(load_results(run), load_manifest(run))
    md = (run.parent / "report.md").read_text()
    for t in make(view):
        assert t and t in md, t
