"""Launchers: resume after a killed run, refusing to overwrite, --jobs 2, submitit."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from suite_fixtures import run_args, spawn_run

from avalanche_neumod.experiment import launch
from avalanche_neumod.experiment.launch import LaunchError, run_suite
from avalanche_neumod.experiment.run_folder import (
    cell_files,
    cell_id_of,
    load_manifest,
    load_results,
    read_json,
    write_json_atomic,
)
from avalanche_neumod.experiment.suite import expand, load_suite
from avalanche_neumod.reporting import tables
from avalanche_neumod.reporting.run_view import View


def _snapshot(run: Path) -> dict:
    return {cell_id_of(p): (p.stat().st_mtime_ns, p.read_bytes()) for p in cell_files(run)}


def _tables(run: Path) -> str:
    view = View(load_results(run), load_manifest(run))
    return tables.final_accuracy_table(view) + tables.status_table(view).split("time per")[0]


def test_resume_after_interrupt_redoes_nothing(tiny_suite, tmp_path, monkeypatch):
    suite = load_suite(tiny_suite)
    calls: list[str] = []
    real = launch.run_cell_to_file

    def counting(cfg, *a, **k):
        if len(calls) == 3:
            raise KeyboardInterrupt  # the run is killed while its 4th cell starts
        calls.append(cfg["cell_id"])
        return real(cfg, *a, **k)

    monkeypatch.setattr(launch, "run_cell_to_file", counting)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, str(run), progress=False)
    first = list(calls)
    before = _snapshot(run)
    assert sorted(before) == sorted(first)
    assert load_manifest(run)["invocations"][-1]["status"] == "interrupted"

    calls.clear()
    summary = run_suite(suite, str(run), progress=False, resume=True)
    all_ids = [c["cell_id"] for c in expand(suite)]
    assert sorted(calls) == sorted(set(all_ids) - set(first))  # nothing finished redone
    assert summary.skipped == first
    after = _snapshot(run)
    assert all(after[k] == v for k, v in before.items())  # finished files untouched
    assert len(after) == len(all_ids)

    calls.clear()
    run_suite(suite, str(run), progress=False, resume=True)
    assert calls == []  # a finished run resumes into nothing

    fresh = tmp_path / "fresh"
    monkeypatch.setattr(launch, "run_cell_to_file", real)
    run_suite(suite, str(fresh), progress=False)
    assert _tables(run) == _tables(fresh)


def test_resume_names_kept_cells_made_by_other_code(tiny_suite, tmp_path):
    """--resume keeps finished cells; those made at another commit (or package version)
    than this run are counted and named, so a changed default cannot hide in them."""

    suite = load_suite(tiny_suite)
    run = tmp_path / "run"
    run_suite(suite, str(run), progress=False)
    files = cell_files(run)
    for f, commit in zip(files[:2], ("a" * 40, "b" * 40)):
        d = read_json(f)
        d["versions"]["git_commit"] = commit
        write_json_atomic(f, d)
    messages: list[str] = []
    run_suite(suite, str(run), progress=False, resume=True, log=messages.append)
    other = [m for m in messages if "other code" in m]
    assert len(other) == 1, messages
    assert "2 kept cell(s)" in other[0] and "1 at commit aaaaaaaaaaaa" in other[0]
    assert "1 at commit bbbbbbbbbbbb" in other[0] and str(run / "cells") in other[0]
    messages.clear()  # cells of this run's own code: nothing said
    for f in files[:2]:
        f.unlink()
    run_suite(suite, str(run), progress=False, resume=True, log=messages.append)
    assert not [m for m in messages if "other code" in m], messages


def test_resume_after_sigkill(tiny_suite, tmp_path):
    """A real ``neumod run`` killed mid-suite (SIGKILL), then ``--resume``."""
    run = tmp_path / "run"
    proc = spawn_run(tiny_suite, run)
    cells = run / "cells"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if cell_files(run):
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done = _snapshot(run)
    assert 1 <= len(done) < 12, proc.stderr.read().decode()[-2000:]
    assert not list(cells.glob("*.tmp"))  # atomic writes: no partial file under a real name

    from avalanche_neumod.cli import main

    rc = main(run_args(tiny_suite, run, "--resume"))
    assert rc == 0
    after = _snapshot(run)
    assert len(after) == 12
    assert all(after[k] == v for k, v in done.items())
    statuses = {r["cell_id"]: r["status"] for r in load_results(run)}
    assert statuses["toy__Boom__seed1"] == "diverged"
    assert statuses["toy__FastNaive__seed1"] == "ok"


def test_refuses_to_overwrite_and_changed_config(tiny_suite, tmp_path):
    suite = load_suite(tiny_suite)
    run = tmp_path / "run"
    run_suite(suite, str(run), methods=["FastNaive"], streams=["toy"], progress=False)
    with pytest.raises(LaunchError, match="--resume"):
        run_suite(suite, str(run), methods=["FastNaive"], streams=["toy"], progress=False)
    tiny_suite.write_text(tiny_suite.read_text().replace("hidden_sizes: [16]", "hidden_sizes: [8]"))
    with pytest.raises(LaunchError, match="different configuration.*model"):
        run_suite(
            load_suite(tiny_suite),
            str(run),
            methods=["FastNaive"],
            streams=["toy"],
            resume=True,
            progress=False,
        )


def test_bad_launcher_and_jobs(tiny_suite, tmp_path):
    suite = load_suite(tiny_suite)
    with pytest.raises(LaunchError, match="valid launchers: local, submitit"):
        run_suite(suite, str(tmp_path / "r"), launcher="slurmish")
    with pytest.raises(LaunchError, match="--jobs must be >= 1"):
        run_suite(suite, str(tmp_path / "r"), jobs=0)
