"""A suite cell whose NGM plugin reports a collapse is recorded as ``collapsed``,
and reports list it like a diverged cell (never averaged)."""

from __future__ import annotations

from avalanche_neumod.experiment.cell import run_cell
from avalanche_neumod.experiment.suite import expand, load_suite
from avalanche_neumod.reporting import tables
from avalanche_neumod.reporting.run_view import View

SUITE = """
name: collapse
description: NGM cells, one forced to report a collapse.
seeds: [0]
defaults:
  model: {name: mlp, args: {hidden_sizes: [16]}}
  train: {mb_size: 8, epochs: 1}
streams:
  toy: {name: "toy:toy_stream", args: {n_experiences: 2}}
methods:
  Naive: {}
  NGM: {name: NGMSGD, args: {eta: 0.4}}
  # any entropy >= 1% of ln C counts as saturated: a collapse after 3 iterations
  Saturated: {name: NGMSGD, args: {eta: 0.4, collapse_patience: 3, collapse_tol: 0.99}}
presets:
  cpu: {}
"""


def test_collapsed_cell_status_and_report(tmp_path):
    path = tmp_path / "collapse.yaml"
    path.write_text(SUITE)
    cells = {c["cell_id"]: c for c in expand(load_suite(str(path)))}
    ok = run_cell(cells["toy__NGM__seed0"])
    bad = run_cell(cells["toy__Saturated__seed0"])
    assert ok["status"] == "ok", ok.get("traceback")
    assert bad["status"] == "collapsed", bad.get("traceback")
    assert bad["collapsed"]["iteration"] == 3 and "entropy" in bad["collapsed"]["reason"]
    assert bad["metrics"]["accuracy_matrix"]  # trained to the end: the matrix is kept
    view = View([ok, bad])
    st = tables.status_table(view)
    assert "| collapsed |" in st.splitlines()[0]
    assert "**collapsed**" in tables.problem_list(view)
    g = view.group("toy", "Saturated")
    assert g.ok == [] and g.stat(lambda c: 1.0).fmt() == "collapsed (1/1)"
