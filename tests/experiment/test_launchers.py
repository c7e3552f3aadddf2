"""Launchers in other processes: ``--jobs 2`` (spawned workers) and submitit's executors
land the same results as the sequential run in the same run folder."""

from __future__ import annotations

import json
import os

from avalanche_neumod.experiment.cell import run_cell
from avalanche_neumod.experiment.launch import run_suite
from avalanche_neumod.experiment.run_folder import load_results
from avalanche_neumod.experiment.suite import expand, load_suite


def _expected(suite, **sel):
    return {c["cell_id"]: run_cell(c, threads=1) for c in expand(suite, **sel)}


def _check(run, expected):
    got = {r["cell_id"]: r for r in load_results(run)}
    assert set(got) == set(expected)
    for k, r in got.items():
        assert r["status"] == expected[k]["status"]
        assert r["metrics"] == json.loads(json.dumps(expected[k]["metrics"]))


def test_jobs2_parallel_processes(tiny_suite, tmp_path, monkeypatch):
    suite = load_suite(tiny_suite)
    sel = dict(methods=["FastNaive", "Boom"], streams=["toy", "toy2"])
    pids = tmp_path / "pids"
    pids.mkdir()
    monkeypatch.setenv("NEUMOD_TEST_PID_DIR", str(pids))
    s = run_suite(suite, str(tmp_path / "jobs2"), launcher="local", jobs=2, progress=False, **sel)
    assert (s.count("ok"), s.count("diverged"), s.count("failed")) == (2, 2, 0), s.errors
    # every cell in a fresh worker: four builds, four processes, none of them this one
    built = [p.name.split("-")[0] for p in pids.iterdir()]
    assert len(built) == 4 and len(set(built)) == 4 and str(os.getpid()) not in built
    monkeypatch.delenv("NEUMOD_TEST_PID_DIR")
    _check(tmp_path / "jobs2", _expected(suite, **sel))


def test_submitit_debug_and_local_executors(tiny_suite, tmp_path):
    suite = load_suite(tiny_suite)
    sel = dict(methods=["FastNaive", "Boom"], streams=["toy"])
    expected = _expected(suite, **sel)
    run_suite(
        suite, str(tmp_path / "debug"), launcher="submitit", cluster="debug", progress=False, **sel
    )
    _check(tmp_path / "debug", expected)
    one = dict(methods=["FastNaive"], streams=["toy"])
    s = run_suite(
        suite, str(tmp_path / "local"), launcher="submitit", cluster="local", progress=False, **one
    )
    assert s.count("ok") == 1, s.errors
    _check(tmp_path / "local", {k: v for k, v in expected.items() if "FastNaive" in k})
    assert list((tmp_path / "local" / "submitit").iterdir())  # submitit's own job folder
