"""Shared fixtures of the suite tests (imported by their conftest files and test_cli.py):
the toy stream module on the path (here and in subprocesses) and a tiny suite file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

TINY = """
name: tiny
description: A tiny suite for the tests.
seeds: [0]
defaults:
  model: {name: mlp, args: {hidden_sizes: [16]}}
  train: {mb_size: 8, epochs: 1}
streams:
  toy: {name: "toy:toy_stream", args: {n_experiences: 3}}
  toy2: {name: "toy:toy_stream", args: {n_experiences: 2, dim: 6}}
methods:
  FastNaive: {}
  Naive: {}
  Boom: {name: FastNaive, optimizer: {lr: 1.0e+8}}
presets:
  cpu: {}
  two_seeds: {seeds: [0, 1]}
"""


@pytest.fixture(autouse=True)
def toy_on_path(monkeypatch):
    """``toy:toy_stream`` importable here, in spawned workers and in submitit jobs."""
    monkeypatch.syspath_prepend(str(HERE))
    paths = [str(HERE), str(REPO), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    yield
    sys.modules.pop("toy", None)


@pytest.fixture
def tiny_suite(tmp_path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY)
    return p


def run_args(suite: Path, out: Path, *extra: str) -> list[str]:
    """``neumod run`` arguments: ``suite`` under preset ``two_seeds`` into ``out``, no progress."""
    return ["run", str(suite), "--preset", "two_seeds", "--out", str(out), *extra, "--no-progress"]


def spawn_run(suite: Path, out: Path) -> subprocess.Popen:
    """A real ``neumod run`` (:func:`run_args`) in a child process; its stderr piped."""
    cmd = [sys.executable, "-m", "avalanche_neumod.cli", *run_args(suite, out)]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
