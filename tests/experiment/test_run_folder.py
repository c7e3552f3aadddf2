"""The run folder's guarantees: one run at a time (lock), no second suite or
configuration mixed in unless asked, damaged files named, killed runs marked."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from suite_fixtures import run_args, spawn_run

from avalanche_neumod.cli import main
from avalanche_neumod.experiment.launch import CellJob, LaunchError, run_suite
from avalanche_neumod.experiment.lock import RunLock, _proc_start, lock_path, read_lock
from avalanche_neumod.experiment.run_folder import (
    DamagedFile,
    DamagedFileWarning,
    cell_path,
    load_manifest,
    load_results,
)
from avalanche_neumod.experiment.suite import load_suite
from avalanche_neumod.reporting.report import build_report

ONE = dict(methods=["FastNaive"], streams=["toy"], progress=False)


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _write_lock(run: Path, **info) -> None:
    run.mkdir(parents=True, exist_ok=True)
    base = {
        "pid": os.getpid(),
        "pid_start": _proc_start(os.getpid()),
        "host": socket.gethostname(),
        "started": "2026-01-01T00:00:00+00:00",
        "invocation": "abc",
        "command": "neumod run x",
    }
    lock_path(run).write_text(json.dumps({**base, **info}))


# ------------------------------------------------------------------ locking


def test_locked_folder_refused_naming_the_holder(tiny_suite, tmp_path):
    run = tmp_path / "run"
    _write_lock(run)
    with pytest.raises(
        LaunchError,
        match=rf"in use by another neumod run: pid {os.getpid()} on "
        rf"{socket.gethostname()}.*neumod run x",
    ):
        run_suite(load_suite(tiny_suite), str(run), **ONE)
    assert not (run / "cells").exists()
    assert read_lock(run)["invocation"] == "abc"  # not taken


def test_stale_lock_taken_over_with_a_message(tiny_suite, tmp_path):
    run = tmp_path / "run"
    _write_lock(run, pid=_dead_pid(), pid_start=None)
    logs: list[str] = []
    s = run_suite(load_suite(tiny_suite), str(run), log=logs.append, **ONE)
    assert s.count("ok") == 1
    assert any("taking over a stale lock" in m and "neumod run x" in m for m in logs)
    assert not lock_path(run).exists()  # released at the end


def test_reused_pid_is_stale(tmp_path):
    """Our own pid with another start time: the pid was reused, the holder is gone."""
    _write_lock(tmp_path, pid_start="1")
    with RunLock(tmp_path, "new", log=lambda m: None) as lock:
        assert lock.took_over["invocation"] == "abc"
        assert read_lock(tmp_path)["invocation"] == "new"


def test_lock_from_another_host_refused(tiny_suite, tmp_path):
    run = tmp_path / "run"
    _write_lock(run, host="elsewhere")
    with pytest.raises(LaunchError, match=rf"another host.*remove {lock_path(run)}"):
        run_suite(load_suite(tiny_suite), str(run), **ONE)


def test_lock_released_after_interrupt(tiny_suite, tmp_path, monkeypatch):
    from avalanche_neumod.experiment import launch

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(launch, "run_cell_to_file", boom)
    with pytest.raises(KeyboardInterrupt):
        run_suite(load_suite(tiny_suite), str(tmp_path / "r"), **ONE)
    assert not lock_path(tmp_path / "r").exists()


def test_two_concurrent_runs_on_one_folder(tiny_suite, tmp_path, capsys):
    """The issue's reproduction: two ``neumod run`` on one --out; the second is refused
    while the first runs, and the first ends with every cell its own."""
    run = tmp_path / "run"
    proc = spawn_run(tiny_suite, run)
    try:
        deadline = time.time() + 120
        while not (run / "manifest.json").exists() and time.time() < deadline:
            time.sleep(0.02)
        other = tiny_suite.with_name("other.yaml")
        other.write_text(
            tiny_suite.read_text().replace(
                "args: {hidden_sizes: [16]}", "args: {hidden_sizes: [8]}"
            )
        )
        rc = main(run_args(other, run))
        err = capsys.readouterr().err
    finally:
        assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-2000:]
    assert rc == 2 and f"in use by another neumod run: pid {proc.pid}" in err
    cells = load_results(run)
    assert len(cells) == 12 and all(
        c["config"]["model"]["args"]["hidden_sizes"] == [16] for c in cells
    )


# ------------------------------------------------------------------ another suite or configuration


def test_second_suite_refused_unless_forced_and_reported_apart(tiny_suite, tmp_path):
    run = tmp_path / "run"
    run_suite(load_suite(tiny_suite), str(run), **ONE)
    other = tmp_path / "other.yaml"
    other.write_text(tiny_suite.read_text().replace("name: tiny", "name: other"))
    with pytest.raises(
        LaunchError,
        match=r"holds 1 cell\(s\) that are not suite 'other'.*"
        r"toy__FastNaive__seed0: suite 'tiny'.*--force-mixed",
    ):
        run_suite(load_suite(other), str(run), methods=["Naive"], streams=["toy"], progress=False)
    assert [r["cell_id"] for r in load_results(run)] == ["toy__FastNaive__seed0"]
    run_suite(
        load_suite(other),
        str(run),
        methods=["Naive"],
        streams=["toy"],
        progress=False,
        force_mixed=True,
    )
    notes: list[str] = []
    md = build_report(run, tmp_path / "rep", notes)
    assert md.startswith("# Run folder `run`: 2 suites")
    assert "# Suite `other` (preset `cpu`): 1 cell(s)" in md
    assert "# Suite `tiny` (preset `cpu`): 1 cell(s)" in md
    assert any("holds cells of 2 suites" in n for n in notes)
    assert "> **Warning**" in md
    man = load_manifest(run)
    assert [s["name"] for s in man["suites"]] == ["tiny", "other"]


def test_changed_configuration_refused_for_other_cells_too(tiny_suite, tmp_path):
    """Cells of an edited suite (another lr) are refused even where their ids are new."""
    run = tmp_path / "run"
    run_suite(load_suite(tiny_suite), str(run), **ONE)
    tiny_suite.write_text(
        tiny_suite.read_text().replace(
            "Naive: {}\n  Naive: {}", "Naive: {optimizer: {lr: 0.5}}\n  Naive: {}"
        )
    )
    edited = load_suite(tiny_suite)
    assert edited.methods["FastNaive"] == {"optimizer": {"lr": 0.5}}
    with pytest.raises(
        LaunchError,
        match=r"toy__FastNaive__seed0: a different configuration "
        r"\(differs in: optimizer\)",
    ):
        run_suite(edited, str(run), methods=["Naive"], streams=["toy"], progress=False)
    with pytest.raises(LaunchError, match=r"different configuration \(differs in: optimizer\)"):
        run_suite(edited, str(run), resume=True, **ONE)


# ------------------------------------------------------------------ damaged files


def test_damaged_cell_named_skipped_in_report_and_redone_on_resume(tiny_suite, tmp_path, capsys):
    run = tmp_path / "run"
    suite = load_suite(tiny_suite)
    run_suite(suite, str(run), methods=["FastNaive", "Naive"], streams=["toy"], progress=False)
    bad = cell_path(run, "toy__Naive__seed0")
    bad.write_bytes(bad.read_bytes()[:200])  # half written
    with pytest.warns(DamagedFileWarning, match=rf"{bad} is damaged \((EOFError|BadGzipFile)"):
        assert [r["cell_id"] for r in load_results(run)] == ["toy__FastNaive__seed0"]
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0
    err = capsys.readouterr().err
    assert f"warning: skipped {bad} is damaged" in err
    assert f"skipped {bad} is damaged" in (tmp_path / "rep" / "report.md").read_text()
    logs: list[str] = []
    s = run_suite(
        suite,
        str(run),
        methods=["FastNaive", "Naive"],
        streams=["toy"],
        progress=False,
        resume=True,
        log=logs.append,
    )
    assert s.statuses == {"toy__Naive__seed0": "ok"}
    assert any(str(bad) in m and "run again" in m for m in logs)
    assert len(load_results(run)) == 2


def test_damaged_manifest_named_in_report_and_set_aside_on_resume(tiny_suite, tmp_path):
    run = tmp_path / "run"
    suite = load_suite(tiny_suite)
    run_suite(suite, str(run), **ONE)
    man = run / "manifest.json"
    man.write_text(man.read_text()[:50])
    notes: list[str] = []
    md = build_report(run, tmp_path / "rep", notes)
    assert any(f"{man} is damaged" in n for n in notes) and "| FastNaive |" in md
    with pytest.raises(DamagedFile, match=str(man)):
        load_manifest(run)
    with pytest.warns(DamagedFileWarning, match=r"moved to .*manifest.json.damaged-"):
        run_suite(suite, str(run), resume=True, **ONE)
    assert load_manifest(run)["invocations"][-1]["status"] == "finished"
    assert list(run.glob("manifest.json.damaged-*"))


# ------------------------------------------------------------------ killed invocations


def _killed(run: Path) -> dict:
    """Make the manifest look like its last run was killed mid-way (SIGKILL leaves it so)."""
    man = json.loads((run / "manifest.json").read_text())
    inv = man["invocations"][-1]
    inv.update(status="running", pid=_dead_pid(), statuses={})
    for k in ("wall_s", "finished"):
        inv.pop(k)
    inv["cells_planned"] += ["toy__Never__seed0"]
    (run / "manifest.json").write_text(json.dumps(man))
    return inv


def test_killed_invocation_reported_and_marked_interrupted(tiny_suite, tmp_path):
    run = tmp_path / "run"
    suite = load_suite(tiny_suite)
    run_suite(suite, str(run), methods=["FastNaive", "Naive"], streams=["toy"], progress=False)
    inv = _killed(run)
    md = build_report(run, tmp_path / "rep")
    line = next(x for x in md.splitlines() if x.startswith("- `") and "status" in x)
    assert "2 of 3 planned cell(s) finished" in line and line.endswith("status interrupted")
    assert "wall time at least" in line
    logs: list[str] = []
    run_suite(suite, str(run), resume=True, log=logs.append, **ONE)
    old = load_manifest(run)["invocations"][0]
    assert old["id"] == inv["id"] and old["status"] == "interrupted"
    assert old["statuses"] == {"toy__FastNaive__seed0": "ok", "toy__Naive__seed0": "ok"}
    assert any("was killed: marked interrupted, 2 of its 3 cell(s) finished" in m for m in logs)


def test_running_invocation_with_live_lock_shown_running(tiny_suite, tmp_path):
    run = tmp_path / "run"
    run_suite(load_suite(tiny_suite), str(run), **ONE)
    inv = _killed(run)
    _write_lock(run, invocation=inv["id"])  # this process holds it: alive
    notes: list[str] = []
    md = build_report(run, tmp_path / "rep", notes)
    assert "1 of 2 planned cell(s) finished" in md and "status running" in md
    assert any("is writing into" in n and "finished so far" in n for n in notes)


# ------------------------------------------------------------------ checkpoints in runs


def test_submitit_checkpoint_protocol(tiny_suite, tmp_path):
    """On preemption submitit calls ``checkpoint`` and requeues the same call."""
    import submitit

    job = CellJob()
    cfg = {"cell_id": "x"}
    d = job.checkpoint(cfg, str(tmp_path), None, False, 2)
    assert isinstance(d, submitit.helpers.DelayedSubmission)
    assert d.function is job and d.args == (cfg, str(tmp_path), None, False, 2)


def test_run_leaves_no_checkpoints(tiny_suite, tmp_path):
    run = tmp_path / "run"
    run_suite(load_suite(tiny_suite), str(run), **ONE)
    assert list((run / "checkpoints").iterdir()) == []


def test_lock_without_hard_links(tmp_path, monkeypatch):
    """File systems without hard links: the lock falls back to an exclusive create."""
    from avalanche_neumod.experiment import lock as lock_mod

    def no_link(*a):
        raise PermissionError("no hard links here")

    monkeypatch.setattr(lock_mod.os, "link", no_link)
    with RunLock(tmp_path, "first", log=lambda m: None):
        assert read_lock(tmp_path)["invocation"] == "first"
        with pytest.raises(lock_mod.RunLocked, match="in use by another neumod run"):
            RunLock(tmp_path, "second").acquire()
    assert not lock_path(tmp_path).exists()
