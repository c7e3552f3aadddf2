"""Compute once: a cell another run folder trained at this code is adopted, not rerun."""

from __future__ import annotations

from pathlib import Path

from suite_fixtures import TINY

from avalanche_neumod.experiment import launch
from avalanche_neumod.experiment.launch import run_suite
from avalanche_neumod.experiment.results import (
    cell_files,
    cell_path,
    load_cell,
    load_manifest,
    load_results,
    read_json,
    write_json_atomic,
)
from avalanche_neumod.experiment.sharing import NAMING_KEYS, training_key
from avalanche_neumod.experiment.suite import expand, load_suite
from avalanche_neumod.reporting import tables
from avalanche_neumod.reporting.results_view import View

# Another suite with one row that trains what tiny's FastNaive trains (other key, other
# label) and one that does not (another learning rate).
OTHER = """
name: other
description: Shares one row with tiny.
seeds: [0]
defaults:
  model: {name: mlp, args: {hidden_sizes: [16]}}
  train: {mb_size: 8, epochs: 1}
streams:
  same_toy: {name: "toy:toy_stream", label: Toy again, args: {n_experiences: 3}}
methods:
  Plain: {name: FastNaive, label: Plain fine-tuning}
  Faster: {name: FastNaive, optimizer: {lr: 0.05}}
presets:
  cpu: {}
"""


def _counting(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = launch.run_cell_to_file

    def counting(cfg, *a, **k):
        calls.append(cfg["cell_id"])
        return real(cfg, *a, **k)

    monkeypatch.setattr(launch, "run_cell_to_file", counting)
    return calls


def _suites(tmp_path: Path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    (tmp_path / "other.yaml").write_text(OTHER)
    return load_suite(tmp_path / "tiny.yaml"), load_suite(tmp_path / "other.yaml")


def test_training_key_ignores_names_only():
    cfg = {"cell_id": "a", "suite": "s", "method_key": "m", "seed": 0, "optimizer": {"lr": 0.1}}
    renamed = dict(cfg, cell_id="b", suite="t", method_key="n", tuning={"index": 3})
    assert training_key(cfg) == training_key(renamed)
    assert training_key(cfg) != training_key(dict(cfg, seed=1))
    assert training_key(cfg) != training_key(dict(cfg, optimizer={"lr": 0.2}))
    assert {"seed", "optimizer", "method", "stream", "train", "metrics"}.isdisjoint(NAMING_KEYS)


def test_shared_row_trains_once_and_reads_the_same(tmp_path, monkeypatch):
    tiny, other = _suites(tmp_path)
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    run_suite(tiny, str(run_a), progress=False, streams=["toy"])
    calls = _counting(monkeypatch)
    summary = run_suite(other, str(run_b), progress=False, share=[str(run_a)])

    assert calls == ["same_toy__Faster__seed0"]  # the shared row did not train
    assert list(summary.shared) == ["same_toy__Plain__seed0"]
    src = load_cell(run_a, "toy__FastNaive__seed0")
    got = load_cell(run_b, "same_toy__Plain__seed0")
    (mine,) = expand(other, methods=["Plain"])
    assert got["config"] == mine  # this suite's names: --resume and the report take it as ours
    assert got["shared_from"]["cell_id"] == "toy__FastNaive__seed0"
    for k in ("metrics", "curves", "measures", "versions", "host", "status"):
        assert got[k] == src[k]
    inv = load_manifest(run_b)["invocations"][-1]
    assert list(inv["cells_shared"]) == ["same_toy__Plain__seed0"]

    calls.clear()  # resume keeps the adopted cell as finished
    again = run_suite(other, str(run_b), progress=False, resume=True, share=[str(run_a)])
    assert calls == [] and sorted(again.skipped) == sorted(c["cell_id"] for c in expand(other))


def test_cells_of_other_code_are_not_adopted(tmp_path, monkeypatch):
    tiny, other = _suites(tmp_path)
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    run_suite(tiny, str(run_a), progress=False, streams=["toy"])
    for p in cell_files(run_a):  # as if an older commit had made them
        r = read_json(p)
        r["versions"]["git_commit"] = "0" * 40
        r["versions"]["avalanche_neumod"] = "0.0.0-old"
        write_json_atomic(cell_path(run_a, r["cell_id"]), r)
    logs: list[str] = []
    calls = _counting(monkeypatch)
    summary = run_suite(other, str(run_b), progress=False, share=[str(run_a)], log=logs.append)
    assert sorted(calls) == ["same_toy__Faster__seed0", "same_toy__Plain__seed0"]
    assert summary.shared == {}
    assert any("other code" in m and "not adopted" in m for m in logs)


def test_report_counts_adopted_cells(tmp_path):
    tiny, other = _suites(tmp_path)
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    run_suite(tiny, str(run_a), progress=False, streams=["toy"])
    run_suite(other, str(run_b), progress=False, share=[str(run_a)])
    table = tables.status_table(View(load_results(run_b), load_manifest(run_b)))
    assert "adopted (trained in another run)" in table
    rows = {line.split("|")[2].strip(): line.split("|")[-2].strip() for line in
            table.splitlines()[2:]}  # fmt: skip
    assert rows == {"Plain": "1", "Faster": "0"}
    plain = tables.status_table(View(load_results(run_a), load_manifest(run_a)))
    assert "adopted" not in plain  # reports without shared cells are unchanged
