"""The optional metrics of a cell, through the evaluation library's plugins, into JSON."""

from __future__ import annotations

import json

import pytest

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
    want = stability_gap_scores(sg["curves"], sg["boundaries"], "delange")
    assert sg["scores"]["de_lange"]["avg_min_acc"] == pytest.approx(want["avg_min_ACC"])
    assert sg["scores"]["de_lange"]["wc_acc"] == pytest.approx(want["WC_ACC"])
    ngm = stability_gap_scores({"0": sg["curves"]["0"]}, sg["boundaries"], "ngm")
    assert sg["scores"]["ngm"]["avg_sg"] == pytest.approx(ngm["avg_SG"])
    assert sg["scores"]["ngm"]["avg_acc"] == pytest.approx(ngm["avg_ACC"])


def test_transfer_record(result):
    from avalanche_neumod.evaluation import bkt, fkt, transfer_table

    t = result["measures"]["transfer"]
    assert t["beta"] == 3 and len(t["A_main"]) == 3 and len(t["A_main"][0]) == 4
    assert t["fkt"] == pytest.approx([fkt(t["A_main"], t["A_ref"], b) for b in range(4)])
    assert t["bkt"] == pytest.approx([bkt(t["A_final"], t["A_ref"], b) for b in range(4)])
    table = transfer_table(t["A_main"], t["A_final"], t["A_ref"])
    assert t["lca_f"] == pytest.approx(table["LCA_F"])
    assert t["lca_b"] == pytest.approx(table["LCA_B"])
    assert t["lca_0"] == pytest.approx(table["LCA_0"])
    # the identity LCA_F = LCA_0_F + mean_b FKT_b (docs/metrics.md) holds on the saved numbers
    assert t["lca_f"] == pytest.approx(t["lca_0_f"] + sum(t["fkt"]) / 4)


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
    """R, A1, R, A2 (issue 14): the cell finishes, the records carry the task identities and
    the saved FKT / stability-gap scores are those of the task-keyed definitions."""
    from avalanche_neumod.evaluation import fkt, stability_gap_scores

    p = tmp_path / "m.yaml"
    p.write_text(RECURRING)
    (cfg,) = expand(load_suite(p))
    r = json.loads(json.dumps(run_cell(cfg)))
    assert r["status"] == "ok", r.get("traceback")
    t = r["measures"]["transfer"]
    assert t["tasks"] == [0, 1, 0, 2]
    assert t["fkt"] == pytest.approx(
        [fkt(t["A_main"], t["A_ref"], b, t["tasks"]) for b in range(4)]
    )
    assert t["lca_f"] == pytest.approx(t["lca_0_f"] + sum(t["fkt"]) / 4)
    sg = r["measures"]["stability_gap"]
    want = stability_gap_scores(sg["curves"], sg["boundaries"], "delange", tasks=sg["tasks"])
    assert sg["scores"]["de_lange"]["avg_min_acc"] == pytest.approx(want["avg_min_ACC"])
