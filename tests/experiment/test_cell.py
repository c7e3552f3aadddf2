"""One cell: the accuracy matrix against a hand evaluation, determinism, divergence, failure."""

from __future__ import annotations

import math

import pytest
import torch

from avalanche_neumod.experiment.cell import run_cell, seed_everything, summarise
from avalanche_neumod.experiment.suite import expand, load_suite
from avalanche_neumod.records import accuracy_kind


def _cells(tiny_suite, **kw):
    return {c["cell_id"]: c for c in expand(load_suite(tiny_suite), **kw)}


def test_accuracy_matrix_matches_hand_evaluation(tiny_suite):
    """Row k of the matrix = accuracy on every test experience after training experience k,
    recomputed here with FastNaive and a plain argmax over the same seeded run."""
    from avalanche.training.plugins import EvaluationPlugin
    from toy import toy_stream

    from avalanche_neumod.models import MLP
    from avalanche_neumod.training import FastNaive

    cfg = _cells(tiny_suite)["toy__FastNaive__seed0"]
    r = run_cell(cfg)
    assert r["status"] == "ok", r.get("traceback")

    seed_everything(0)
    bm = toy_stream(n_experiences=3, seed=0)
    model = MLP(input_size=8, hidden_sizes=[16], num_classes=4)
    strat = FastNaive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
        train_mb_size=8,
        evaluator=EvaluationPlugin(loggers=[]),
    )
    expected = []
    for exp in bm.train_stream:
        strat.train(exp)
        model.eval()
        with torch.no_grad():
            expected.append(
                [
                    float((model(e.tensors.x).argmax(1) == e.tensors.y).float().mean())
                    for e in bm.test_stream
                ]
            )
    got = r["metrics"]["accuracy_matrix"]
    assert len(got) == 3
    for row, exp_row in zip(got, expected):
        assert row == pytest.approx(exp_row, abs=1e-9)
    m = r["metrics"]
    assert m["final_accuracy"] == pytest.approx(expected[-1])
    assert m["avg_final_accuracy"] == pytest.approx(sum(expected[-1]) / 3)
    assert m["accuracy_at_end"] == pytest.approx([expected[k][k] for k in range(3)])
    assert m["iterations_per_experience"] == [8, 8, 8]  # 64 samples / batch 8
    assert r["curves"]["train"]["boundaries"] == [0, 8, 16]
    assert r["versions"]["torch"] == torch.__version__
    assert r["config"] == cfg


def test_same_seed_same_metrics(tiny_suite):
    cells = _cells(tiny_suite, seeds=[0, 1])
    a = run_cell(cells["toy__Naive__seed0"])
    b = run_cell(cells["toy__Naive__seed0"])
    c = run_cell(cells["toy__Naive__seed1"])
    assert a["status"] == b["status"] == "ok"
    assert a["metrics"] == b["metrics"]
    assert a["curves"] == b["curves"]
    assert a["metrics"] != c["metrics"]


def test_diverged_cell_is_recorded(tiny_suite):
    r = run_cell(_cells(tiny_suite)["toy__Boom__seed0"])
    assert r["status"] == "diverged"
    d = r["diverged"]
    assert d["experience"] == 0 and d["iteration"] >= 1
    assert not math.isfinite(d["loss"])
    assert "final_accuracy" not in r["metrics"]  # never reported as a number
    assert r["curves"]["train"]["boundaries"] == [0]


def test_failed_cell_is_recorded_not_raised(tiny_suite):
    cfg = _cells(tiny_suite)["toy__Naive__seed0"]
    cfg["method"]["args"] = {"no_such_argument": 1}
    r = run_cell(cfg)
    assert r["status"] == "failed"
    assert "no_such_argument" in r["error"]
    assert "Traceback" in r["traceback"]


def test_summarise_and_accuracy_kind():
    m = [[0.5, 0.1], [0.2, 0.9]]
    s = summarise(m, [0.3, 0.55], {"accuracy_kind": "end_of_task"}, [4, 4], complete=True)
    assert s["avg_accuracy_kind"] == "end_of_task"
    assert s["avg_accuracy"] == pytest.approx(0.7)
    assert s["avg_final_accuracy"] == pytest.approx(0.55)
    s = summarise(m, [0.3, 0.55], {}, [4, 4], complete=True)
    assert s["avg_accuracy"] == pytest.approx(0.55)
    assert accuracy_kind({"accuracy_kind": "end_of_task"}) == "end_of_task"


def test_accuracy_at_end_on_a_recurring_stream_scores_each_task_on_its_own_test():
    """R, A1, R, A2 against test experiences [R, A1, A2]: row 2 (after R) reads column 0."""
    m = [[0.9, 0.1, 0.1], [0.5, 0.8, 0.1], [0.95, 0.4, 0.1], [0.6, 0.3, 0.7]]
    info = {"accuracy_kind": "end_of_task", "train_order": [0, 1, 0, 2]}
    s = summarise(m, [0.5] * 4, info, [4] * 4, complete=True)
    assert s["accuracy_at_end"] == pytest.approx([0.9, 0.8, 0.95, 0.7])
    assert s["avg_accuracy"] == pytest.approx((0.9 + 0.8 + 0.95 + 0.7) / 4)
