"""Mechanism activity recorded in every cell: the runner's own readings, and what each
method's ``mechanism_activity`` hook reports (the runner names no method); the commit a
cell ran at."""

from __future__ import annotations

import pytest
from avalanche.core import SupervisedPlugin

from avalanche_neumod.experiment import cell as cell_mod
from avalanche_neumod.experiment.cell import run_cell
from avalanche_neumod.experiment.suite import expand, load_suite

SUITE = """
name: act
seeds: [0]
defaults:
  model: {name: mlp, args: {hidden_sizes: [16]}}
  train: {mb_size: 8, epochs: 2}
streams:
  toy: {name: "toy:toy_stream", args: {n_experiences: 2}}
methods:
  Naive: {}
  CBP: {args: {rho: 0.05, m: 2}}
  ReDo: {args: {tau: 1.0, F: 3}}
  L2Init: {args: {lam: 0.1}}
  ShrinkPerturb: {}
  SPexp: {name: ShrinkPerturb, args: {every: experience}}
presets: {cpu: {}}
"""


@pytest.fixture
def cells(tmp_path):
    p = tmp_path / "act.yaml"
    p.write_text(SUITE)
    return {c["method_key"]: c for c in expand(load_suite(p))}


def _act(r):
    assert r["status"] == "ok", r.get("traceback")
    return r["measures"]["activity"]["per_experience"]


def test_mechanism_counters_and_diagnostics(cells):
    naive = _act(run_cell(cells["Naive"]))
    assert len(naive) == 2
    assert "cbp_replaced" not in naive[0] and "redo_recycled" not in naive[0]
    assert 0 < naive[0]["distance_from_init"] < naive[1]["distance_from_init"]
    for rec in naive:
        assert 0.0 <= rec["dormant"] <= 1.0 and rec["effective_rank"] > 1.0
    cbp = _act(run_cell(cells["CBP"]))
    assert cbp[-1]["cbp_replaced"] > 0 and cbp[-1]["cbp_replaced"] >= cbp[0]["cbp_replaced"]
    redo = _act(run_cell(cells["ReDo"]))
    assert redo[-1]["redo_recycled"] > 0  # tau = 1: about half the units score below it
    l2 = _act(run_cell(cells["L2Init"]))
    d = l2[-1]["distance_from_init"]
    # the plugin's own theta_0 and arithmetic: the very bits the runner's distance gives
    assert l2[-1]["l2init_penalty"] == 0.1 * d * d
    assert 0 < l2[-1]["l2init_penalty_share"] < 1
    sp = _act(run_cell(cells["ShrinkPerturb"]))
    # the plugin counts its own applications: 2 experiences x 2 epochs x 8 iterations
    assert [r["shrink_perturb_steps"] for r in sp] == [16, 32]
    sp = _act(run_cell(cells["SPexp"]))
    assert [r["shrink_perturb_steps"] for r in sp] == [0, 1]  # before each experience but the first


class _Nothing(SupervisedPlugin):
    def __init__(self, **kw):
        super().__init__()

    def to_dict(self):
        return {}


@pytest.mark.parametrize("method", ["CBP", "ReDo"])
def test_recording_does_not_change_training(cells, method, monkeypatch):
    """The recorder draws no global randomness and changes no state: the metrics are
    bit-identical with and without it (so cells stay comparable with older ones)."""
    with_it = run_cell(cells[method])["metrics"]["accuracy_matrix"]
    monkeypatch.setattr(cell_mod, "ActivityRecorder", _Nothing)
    without = run_cell(cells[method])["metrics"]["accuracy_matrix"]
    assert with_it == without


def test_versions_name_the_commit_and_dirty_flag():
    v = cell_mod.versions()
    assert len(v["git_commit"]) == 40
    assert isinstance(v["git_dirty"], bool)
