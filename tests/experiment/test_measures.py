"""The optional metrics of a cell, through the evaluation library's metrics, into JSON."""

from __future__ import annotations

import csv
import json
import math

import pytest
from avalanche.training.plugins import EvaluationPlugin

from avalanche_neumod.evaluation import (
    KnowledgeTransferMetric,
    MetricsCSVLogger,
    StabilityGapMetric,
)
from avalanche_neumod.experiment import cell
from avalanche_neumod.experiment.cell import run_cell
from avalanche_neumod.experiment.suite import expand, load_suite

SUITE = """
name: m
seeds: [0]
defaults:
  model: {name: mlp, args: {hidden_sizes: [16]}}
  train: {mb_size: 8}
streams:
  toy: {name: "toy:toy_stream", args: {n_experiences: 3}}
methods:
  FastNaive: {}
presets:
  cpu:
    defaults:
      metrics:
        stability_gap: {eval_every: 2, samples_per_exp: 16, tracked: all}
        transfer: {beta: 3, eval_samples: 16}
        plasticity: {samples: 16}
"""


@pytest.fixture
def result(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text(SUITE)
    (cfg,) = expand(load_suite(p))
    r = run_cell(cfg)
    assert r["status"] == "ok", r.get("traceback")
    return json.loads(json.dumps(r))  # what is saved


def test_stability_gap_record(result):
    from avalanche_neumod.evaluation import stability_gap_scores

    sg = result["measures"]["stability_gap"]
    assert sorted(sg["curves"]) == ["0", "1", "2"]
    assert sg["boundaries"] == [0, 8, 16]
    x0 = sg["curves"]["0"]["x"]
    assert x0[0] == 0 and x0[-1] == 24 and all(b > a for a, b in zip(x0, x0[1:]))
    assert sg["windows"] == [10, 100] and sg["tolerance"] == 0.01
    want = stability_gap_scores(sg["curves"], sg["boundaries"], "delange")
    assert sorted(sg["scores"]) == ["delange", "ngm"]
    assert sg["scores"]["delange"] == pytest.approx(want)  # the evaluation's names, no copies
    ngm = stability_gap_scores({"0": sg["curves"]["0"]}, sg["boundaries"], "ngm")
    assert sg["scores"]["ngm"] == pytest.approx({**ngm, "experience": 0})


def test_transfer_record(result):
    from avalanche_neumod.evaluation import bkt, fkt, transfer_table

    t = result["measures"]["transfer"]
    assert t["beta"] == 3 and len(t["A_main"]) == 3 and len(t["A_main"][0]) == 4
    # each score stored once, under the evaluation's names (no lower-case copies)
    assert not {"scores", "fkt", "bkt", "lca_0", "lca_f", "lca_b"} & set(t)
    assert t["FKT"]["b"] == pytest.approx([fkt(t["A_main"], t["A_ref"], b) for b in range(4)])
    assert t["BKT"]["b"] == pytest.approx([bkt(t["A_final"], t["A_ref"], b) for b in range(4)])
    table = transfer_table(t["A_main"], t["A_final"], t["A_ref"], t["final_acc"])
    for side in ("FKT", "BKT"):
        for at in ("half", "beta", "mean"):
            assert t[side][at] == pytest.approx(table[f"{side}_{at}"])
    for k in ("LCA_0", "LCA_0_F", "LCA_0_B", "LCA_F", "LCA_B", "AvgFinalAcc"):
        assert t[k] == pytest.approx(table[k])
    assert t["FKT"]["half"] == t["FKT"]["b"][1] and t["BKT"]["beta"] == t["BKT"]["b"][3]
    # the identity LCA_F = LCA_0_F + mean_b FKT_b (docs/metrics.md) holds on the saved numbers
    assert t["LCA_F"] == pytest.approx(t["LCA_0_F"] + t["FKT"]["mean"])


def test_plasticity_record(result):
    p = result["measures"]["plasticity"]
    names = [n.split("/")[0] for n in p]
    assert "DormantFraction" in names and "EffectiveRank" in names
    for rec in p.values():
        assert len(rec["x"]) == len(rec["value"]) >= 1


RECURRING = SUITE.replace(
    'toy: {name: "toy:toy_stream", args: {n_experiences: 3}}',
    'toy: {name: "toy:toy_stream", args: {n_experiences: 3}, wrappers: [{name: recurring}]}',
)


def test_recurring_stream_cell_scores_each_task_against_its_own_test_set(tmp_path):
    """R, A1, R, A2 (a task trained twice): the cell finishes, the records carry the task
    identities and
    the saved FKT / stability-gap scores are those of the task-keyed definitions."""
    from avalanche_neumod.evaluation import fkt, stability_gap_scores

    p = tmp_path / "m.yaml"
    p.write_text(RECURRING)
    (cfg,) = expand(load_suite(p))
    r = json.loads(json.dumps(run_cell(cfg)))
    assert r["status"] == "ok", r.get("traceback")
    t = r["measures"]["transfer"]
    assert t["tasks"] == [0, 1, 0, 2]
    assert t["FKT"]["b"] == pytest.approx(
        [fkt(t["A_main"], t["A_ref"], b, t["tasks"]) for b in range(4)]
    )
    assert t["LCA_F"] == pytest.approx(t["LCA_0_F"] + sum(t["FKT"]["b"]) / 4)
    sg = r["measures"]["stability_gap"]
    want = stability_gap_scores(sg["curves"], sg["boundaries"], "delange", tasks=sg["tasks"])
    assert sg["scores"]["delange"]["avg_min_ACC"] == pytest.approx(want["avg_min_ACC"])


def test_one_object_feeds_the_loggers_and_the_cell_record(tmp_path, monkeypatch):
    """The runner's stability-gap and transfer metrics are the objects a user gives an
    EvaluationPlugin: a CSV logger on the cell's evaluator receives the values the cell
    record stores, equal, from those same objects."""
    p = tmp_path / "m.yaml"
    p.write_text(SUITE)
    (cfg,) = expand(load_suite(p))
    out = tmp_path / "metrics.csv"
    held: list = []

    def with_csv(*metrics, loggers, **kwargs):
        held.append(MetricsCSVLogger(out))
        ev = EvaluationPlugin(*metrics, loggers=[held[-1]], **kwargs)
        held.append(ev)
        return ev

    monkeypatch.setattr(cell, "EvaluationPlugin", with_csv)
    r = json.loads(json.dumps(run_cell(cfg)))
    assert r["status"] == "ok", r.get("traceback")
    held[0].close()
    ev = held[1]
    ours = [m for m in ev.metrics if isinstance(m, (StabilityGapMetric, KnowledgeTransferMetric))]
    assert sorted(type(m).__name__ for m in ours) == [
        "KnowledgeTransferMetric",
        "StabilityGapMetric",
    ]
    with open(out, newline="") as f:
        logged: dict[str, list[tuple[int, float]]] = {}
        for row in csv.DictReader(f):
            logged.setdefault(row["name"], []).append((int(row["x"]), float(row["value"])))

    sg = r["measures"]["stability_gap"]
    for i, c in sg["curves"].items():
        name = f"TrackedAcc/train_phase/test_stream/Exp{int(i):03d}"
        assert logged[name] == list(zip(c["x"], c["acc"])), name
    final = {k.split("/")[0]: v[-1][1] for k, v in logged.items()}
    de = sg["scores"]["delange"]
    for key, name in (
        ("avg_ACC", "AvgAcc_Stream"),
        ("avg_min_ACC", "AvgMinAcc_Stream"),
        ("WC_ACC", "WCAcc_Stream"),
        ("avg_SG", "AvgStabilityGap_Stream"),
        ("WF10", "WF10_Stream"),
    ):
        assert final[name] == de[key] or (math.isnan(final[name]) and math.isnan(de[key])), key

    t = r["measures"]["transfer"]
    for side in ("FKT", "BKT"):
        for at, label in (("half", "Half"), ("beta", "Beta"), ("mean", "Mean")):
            assert final[f"{side}_{label}_Stream"] == t[side][at], (side, at)
    for key, name in (
        ("LCA_0", "LCA0_Stream"),
        ("LCA_F", "LCA_F_Stream"),
        ("LCA_B", "LCA_B_Stream"),
    ):
        assert final[name] == t[key], key
    assert final["AvgEndAcc_Stream"] == t["AvgEndAcc"]
