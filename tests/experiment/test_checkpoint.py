"""Cell checkpoints: a cell killed after an experience continues from its checkpoint
and ends with the same result, bit for bit, as a run never interrupted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from avalanche_neumod.experiment import checkpoint as ckpt
from avalanche_neumod.experiment.cell import run_cell
from avalanche_neumod.experiment.run_folder import _clean, load_cell
from avalanche_neumod.experiment.suite import expand, load_suite

REPO = Path(__file__).resolve().parents[2]

SUITE = """
name: ck
seeds: [0]
defaults:
  model: {name: mlp, args: {hidden_sizes: [16]}}
  train: {mb_size: 16}
streams:
  toy: {name: "toy:toy_stream", args: {n_experiences: 4}}
methods:
  SGDm: {name: FastNaive, optimizer: {name: sgd, lr: 0.05, momentum: 0.9}}
  EWC: {}
  Replay: {args: {mem_size: 20}}
  CBP: {args: {rho: 0.05}}
  NGMSGD: {}
  NeuMoSync: {args: {d_model: 8, num_layers: 1, num_heads: 1, dim_feedforward: 8}}
presets:
  cpu:
    defaults:
      metrics:
        stability_gap: {eval_every: 2, samples_per_exp: 8}
"""

KEYS = ("status", "metrics", "curves", "measures", "stream_info", "config")


def _cells(tmp_path) -> dict:
    p = tmp_path / "ck.yaml"
    p.write_text(SUITE)
    return {c["method_key"]: c for c in expand(load_suite(p))}


def _saved(r: dict) -> dict:
    """What is compared: everything but timings, times and where it ran."""
    return json.loads(json.dumps(_clean({k: r.get(k) for k in KEYS})))


class Killed(BaseException):
    """Stands for a kill: not an Exception, so the cell does not record it."""


@pytest.mark.parametrize("method", ["SGDm", "EWC", "Replay", "CBP", "NGMSGD", "NeuMoSync"])
def test_resumed_cell_equals_uninterrupted(method, tmp_path, monkeypatch):
    cfg = _cells(tmp_path)[method]
    full = run_cell(cfg)
    assert full["status"] == "ok", full.get("traceback")

    path = tmp_path / "c.ckpt"
    real = ckpt.save
    calls = []

    def save_then_die(*a, **k):
        ok = real(*a, **k)
        calls.append(a[3]["done"])
        if len(calls) == 2:  # killed right after experience 1's checkpoint
            raise Killed
        return ok

    monkeypatch.setattr(ckpt, "save", save_then_die)
    with pytest.raises(Killed):
        run_cell(cfg, checkpoint=str(path))
    assert path.exists() and calls == [1, 2]
    monkeypatch.setattr(ckpt, "save", real)

    resumed = run_cell(cfg, checkpoint=str(path))
    assert resumed["resumed"]["from_experience"] == 2
    assert _saved(resumed) == _saved(full)


def test_unusable_checkpoint_is_discarded(tmp_path, recwarn):
    cfg = _cells(tmp_path)["SGDm"]
    path = tmp_path / "c.ckpt"
    path.write_bytes(b"\\x80\\x04 half a pickle")
    r = run_cell(cfg, checkpoint=str(path))
    assert r["status"] == "ok" and "resumed" not in r
    assert any("checkpoint not usable" in str(w.message) for w in recwarn.list)
    assert _saved(r) == _saved(run_cell(cfg))
    # a checkpoint of another configuration is not used either
    other = dict(cfg, optimizer={"name": "sgd", "lr": 0.01})
    assert ckpt.save(path, cfg["cell_id"], other, {"strategy": None}, {})
    assert ckpt.load(path, cfg["cell_id"], cfg, {}) is None and not path.exists()


def test_checkpoint_is_small_and_atomic(tmp_path, monkeypatch):
    """The stream's data is referred to, not stored; a write killed midway leaves the
    previous checkpoint."""
    cfg = _cells(tmp_path)["SGDm"]
    path = tmp_path / "c.ckpt"
    real = ckpt.save
    sizes = []

    def save(*a, **k):
        ok = real(*a, **k)
        sizes.append(os.path.getsize(path))
        if len(sizes) == 1:
            raise Killed
        return ok

    monkeypatch.setattr(ckpt, "save", save)
    with pytest.raises(Killed):
        run_cell(cfg, checkpoint=str(path))
    assert sizes[0] < 200_000
    before = path.read_bytes()

    def broken_dump(self, obj):  # killed while the new checkpoint is being written
        raise Killed

    monkeypatch.setattr(ckpt._Pickler, "dump", broken_dump)
    monkeypatch.setattr(ckpt, "save", real)
    with pytest.raises(Killed):
        run_cell(cfg, checkpoint=str(path))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_neumod_run_killed_mid_cell_resumes(tiny_suite, tmp_path):
    """``neumod run`` SIGKILLed inside its first cell (after that cell's experience 1),
    then ``neumod run --resume``: the cell continues from its checkpoint and every result
    equals a run never interrupted."""
    from avalanche_neumod.cli import main
    from avalanche_neumod.experiment.run_folder import load_manifest, load_results

    run, fresh = tmp_path / "run", tmp_path / "fresh"
    args = ["run", str(tiny_suite), "--methods", "FastNaive", "Naive", "--streams", "toy"]
    args += ["--no-progress"]
    script = """
import os, signal, sys
from avalanche_neumod.experiment import checkpoint as ckpt
from avalanche_neumod.cli import main
real, n = ckpt.save, []
def save(*a, **k):
    ok = real(*a, **k)
    n.append(1)
    if len(n) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return ok
ckpt.save = save
main(sys.argv[1:])
"""
    proc = subprocess.run(
        [sys.executable, "-c", script, *args, "--out", str(run)],
        cwd=REPO,
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert not (run / "cells").exists()  # killed inside the first cell
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["toy__FastNaive__seed0.ckpt"]
    assert main([*args, "--out", str(run), "--resume"]) == 0
    assert main([*args, "--out", str(fresh)]) == 0
    got = {r["cell_id"]: r for r in load_results(run)}
    want = {r["cell_id"]: r for r in load_results(fresh)}
    assert sorted(got) == sorted(want) and len(got) == 2
    assert got["toy__FastNaive__seed0"]["resumed"]["from_experience"] == 2
    for k in got:
        assert _saved(got[k]) == _saved(want[k])
    assert load_manifest(run)["invocations"][0]["status"] == "interrupted"
    assert list((run / "checkpoints").iterdir()) == []


def test_submitit_preemption_requeues_from_checkpoint(tmp_path):
    """submitit's local executor: a job preempted (its signal) after experience 0's
    checkpoint is requeued through ``CellJob.checkpoint`` and continues from there."""
    import time

    import submitit

    from avalanche_neumod.experiment.launch import CellJob

    p = tmp_path / "slow.yaml"
    p.write_text(
        SUITE.replace("  SGDm:", '  Slow: {name: "toy:SlowNaive", args: {pause: 1.5}}\n  SGDm:')
    )
    (cfg,) = [c for c in expand(load_suite(p)) if c["method_key"] == "Slow"]
    run = tmp_path / "run"
    ex = submitit.AutoExecutor(folder=str(tmp_path / "sub" / "%j"), cluster="local")
    ex.update_parameters(timeout_min=10)
    job = ex.submit(CellJob(), cfg, str(run), None, False, 1)
    path = ckpt.ckpt_path(run, cfg["cell_id"])
    deadline = time.time() + 240
    while not path.exists() and time.time() < deadline and not job.done():
        time.sleep(0.05)
    assert path.exists()
    # the preemption signal (as SLURM sends it) to the job's task, while experience 1 trains
    ctl = job._process.pid
    kids = Path(f"/proc/{ctl}/task/{ctl}/children")
    if not kids.exists():
        pytest.skip("needs /proc/<pid>/task/<pid>/children to find the job's task")
    task = int(kids.read_text().split()[0])
    os.kill(task, submitit.JobEnvironment._usr_sig())
    assert job.result()["status"] == "ok"
    got = load_cell(run, cfg["cell_id"])
    assert got["resumed"]["from_experience"] >= 1
    assert "Caught signal" in job.stderr()
    assert _saved(got) == _saved(run_cell(cfg))
    assert not path.exists()
