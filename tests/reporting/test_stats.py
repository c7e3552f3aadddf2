"""Statistics of the reports on synthetic results whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avalanche_neumod.reporting import View, tables
from avalanche_neumod.reporting import stats as st
from avalanche_neumod.reporting.claims import claims


def test_t_interval_known_values():
    iv = st.t_interval([1.0, 2.0, 3.0])
    # s = 1, n = 3, t_{0.975, 2} = 4.302653
    assert iv.mean == 2.0 and iv.half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    one = st.t_interval([0.7, math.nan])
    assert one.mean == 0.7 and one.n == 1 and math.isnan(one.lo)


def test_paired_verdicts():
    rng = np.random.default_rng(0)
    base = {s: 0.5 + 0.1 * rng.standard_normal() for s in range(5)}
    better = {s: v + 0.10 + 0.005 * rng.standard_normal() for s, v in base.items()}
    p = st.paired_bootstrap(better, base)
    assert st.verdict(p) == "better" and st.verdict(p, higher_better=False) == "worse"
    assert p.diff.lo < 0.10 < p.diff.hi and p.n_pos == 5
    assert st.verdict(st.paired_bootstrap(base, better)) == "worse"
    # identical results: no difference, never "better"
    assert st.verdict(st.paired_bootstrap(base, dict(base))) == "no detectable difference"
    # a positive mean difference whose seeds disagree is no evidence
    noisy = {s: v + d for (s, v), d in zip(base.items(), [0.05, -0.04, 0.03, -0.02, 0.01])}
    p = st.paired_bootstrap(noisy, base)
    assert p.diff.mean > 0 and st.verdict(p) == "no detectable difference"
    # three same-sign differences of very unequal size: the percentile bootstrap alone
    # excludes 0, the t-interval does not: no verdict
    a = {0: 0.5 + 1e-4, 1: 0.5 + 1e-4, 2: 0.5 + 0.3}
    b = {0: 0.5, 1: 0.5, 2: 0.5}
    p = st.paired_bootstrap(a, b)
    assert p.diff.excludes_zero() and not p.t.excludes_zero()
    assert st.verdict(p) == "no detectable difference"
    # seeds are paired by id: only the shared ones count
    p = st.paired_bootstrap({0: 1.0, 1: 1.0, 7: 9.0}, {0: 0.0, 1: 0.0, 2: 5.0})
    assert p.seeds == [0, 1] and st.verdict(p) == "too few seeds"


def test_slope_interval_known_answer():
    rng = np.random.default_rng(1)
    k = np.arange(10)
    declining = [list(0.9 - 0.02 * k + 0.005 * rng.standard_normal(10)) for _ in range(5)]
    iv = st.slope_interval(declining)
    assert iv.lo < -0.02 < iv.hi and iv.hi < 0
    flat = [list(0.5 + 0.05 * rng.standard_normal(10)) for _ in range(5)]
    assert not st.slope_interval(flat).excludes_zero()
    assert st.slope([0, 1, 2], [1.0, 3.0, 5.0]) == pytest.approx(2.0)
    # from the peak on: an under-trained rise before the decline is left out
    assert st.peak_slope([0.2, 0.5, 0.8, 0.6, 0.4]) == pytest.approx(-0.2)
    assert st.slope(range(5), [0.2, 0.5, 0.8, 0.6, 0.4]) == pytest.approx(0.05)
    assert math.isnan(st.peak_slope([0.1, 0.2, 0.3]))  # the peak is the last task


def _cell(stream, method, seed, acc, at_end=None, name=None, activity=None, matrix=None):
    return {
        "cell_id": f"{stream}__{method}__seed{seed}",
        "status": "ok",
        "config": {
            "stream_key": stream,
            "method_key": method,
            "seed": seed,
            "method": {"name": name or method, "args": {}},
            "optimizer": {"name": "sgd", "lr": 0.01},
            "stream": {"name": "random_label_mnist", "args": {}, "wrappers": []},
        },
        "metrics": {
            "avg_accuracy": acc,
            "avg_final_accuracy": acc,
            "accuracy_at_end": at_end or [acc, acc],
            "accuracy_matrix": matrix or [[acc]],
            "n_iterations": 10,
        },
        "measures": {"activity": {"per_experience": activity}} if activity else {},
        "timings": {"total_s": 1.0, "train_s": [0.5], "eval_s": [0.1]},
        "versions": {"git_commit": "abc123", "git_dirty": False},
        "stream_info": {"accuracy_kind": "end_of_task"},
    }


def _view():
    rs = []
    k = np.arange(6)
    for s in range(5):
        naive_curve = list(0.9 - 0.05 * k + 0.001 * s)
        rs.append(_cell("rl", "Naive", s, 0.5 + 0.01 * s, naive_curve, matrix=[[0.1 * s]]))
        # CBP never acted: the same matrix as Naive, seed by seed
        rs.append(
            _cell(
                "rl",
                "CBP",
                s,
                0.5 + 0.01 * s,
                naive_curve,
                matrix=[[0.1 * s]],
                activity=[
                    {
                        "cbp_replaced": 0,
                        "dormant": 0.1,
                        "effective_rank": 5.0,
                        "distance_from_init": 1.0,
                    }
                ],
            )
        )
        rs.append(
            _cell(
                "rl",
                "Good",
                s,
                0.6 + 0.01 * s,
                list(0.9 + 0.03 * np.random.default_rng(s).standard_normal(6)),
                name="FastNaive2",
                activity=[
                    {"dormant": 0.0, "effective_rank": 9.0, "distance_from_init": 2.0},
                    {"dormant": 0.2, "effective_rank": 7.0, "distance_from_init": 3.0},
                ],
            )
        )
    return View(rs)


def test_claims_against_naive_and_slopes():
    view = _view()
    text = claims(view)
    assert "Good's average accuracy vs Naive: +10.00 points" in text
    line = [x for x in text.splitlines() if "Good's average accuracy vs Naive" in x][0]
    assert "**better**" in line
    line = [x for x in text.splitlines() if "CBP's average accuracy vs Naive" in x][0]
    assert "**no detectable difference**" in line
    t = tables.slope_table(view)
    naive = [r for r in t.splitlines() if "| Naive |" in r][0]
    assert "-5.00 [" in naive and "declines" in naive  # 5 points per task
    good = [r for r in t.splitlines() if "| Good |" in r][0]
    assert "no detectable trend" in good
    # the slope from the peak (Naive's peak is its first task: the same -5) and the slope
    # difference with Naive's, paired by seed
    cells = {h.strip(): i for i, h in enumerate(t.splitlines()[0].split("|"))}
    col = cells["slope − Naive's, paired by seed [95% CI]"]
    assert naive.split("|")[cells["slope from the peak [95% CI]"]].strip().startswith("-5.00 [")
    assert naive.split("|")[col].strip() == "(the reference)"
    assert good.split("|")[col].strip().startswith("5.") and "(slower)" in good
    cbp = [r for r in t.splitlines() if "| CBP |" in r][0]
    assert cbp.split("|")[col].strip() == "0.00 [0.00, 0.00]"  # Naive's own curves


def test_activity_table_and_naive_flag():
    view = _view()
    t = tables.activity_table(view)
    cbp = [r for r in t.splitlines() if "| CBP |" in r][0]
    assert "**yes (5/5 seeds)**" in cbp and "| 0 ± 0 |" in cbp.replace("0 ± 0", "0 ± 0")
    good = [r for r in t.splitlines() if "| Good |" in r][0]
    assert "0.0 ± 0.0 → 20.0 ± 0.0" in good and "| no |" in good
    assert "CBP: the accuracy matrix equals Naive's bit for bit in 5 of 5" in (
        tables.naive_identical_list(view)
    )
    assert tables.commits(view) == [("abc123", False, 15)]


def test_plasticity_loss_figure(tmp_path):
    from avalanche_neumod.reporting import figures

    assert figures.plasticity_loss(_view(), tmp_path).stat().st_size > 5000
    # a stream that is neither memorisation nor drift gets no panel
    rs = [_cell("cs", "Naive", 0, 0.5)]
    rs[0]["config"]["stream"]["name"] = "class_split_cifar100"
    rs[0]["stream_info"] = {"accuracy_kind": "final"}
    assert figures.plasticity_loss(View(rs), tmp_path) is None
    assert tables.slope_table(View(rs)) == ""
