"""A user's method, defined here and passed to a suite by import path, gets its mechanism's
activity, history and failure recorded in the cell and shown in the suite's report by
implementing the hooks of ``training.method.ReportsMechanism``, with nothing of
``experiment/`` or ``reporting/`` naming it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Optional

import torch
from avalanche.core import SupervisedPlugin

from avalanche_neumod import cli
from avalanche_neumod.training import FastNaive, ReportsMechanism

# the name the suite imports this file by (tests/experiment is on the path: conftest.py)
HERE = "test_user_method"


class ToyResetPlugin(SupervisedPlugin):
    """A toy mechanism: every ``every`` training iterations, the output layer's bias is set
    to zero. Counts its resets; "fails" once it has reset ``fail_after`` times."""

    def __init__(self, every: int, fail_after: Optional[int] = None):
        super().__init__()
        self.every, self.fail_after = every, fail_after
        self.iterations = self.resets = 0
        self.reset_at: list[int] = []

    def after_update(self, strategy, **kwargs) -> None:
        self.iterations += 1
        if self.iterations % self.every == 0:
            with torch.no_grad():
                [p for n, p in strategy.model.named_parameters() if n.endswith("bias")][-1].zero_()
            self.resets += 1
            self.reset_at.append(self.iterations)

    # the three hooks
    def mechanism_activity(self, strategy) -> dict:
        return {"toy_resets": self.resets, "toy_iterations": self.iterations}

    def mechanism_history(self) -> dict:
        return {"toy": {"reset_at": list(self.reset_at)}}

    def mechanism_failure(self) -> Optional[dict]:
        if self.fail_after is not None and self.resets >= self.fail_after:
            return {"reason": "toy: too many resets", "resets": self.resets}
        return None


class ToyMethod(FastNaive):
    """Naive fine-tuning + :class:`ToyResetPlugin` (a user's strategy)."""

    def __init__(self, *, every: int = 3, fail_after: Optional[int] = None, **kwargs):
        self.toy = ToyResetPlugin(every, fail_after)
        super().__init__(**{**kwargs, "plugins": [self.toy, *(kwargs.get("plugins") or [])]})


SUITE = f"""
name: usermethod
description: A user's method with its own mechanism reporting.
seeds: [0, 1]
defaults:
  model: {{name: mlp, args: {{hidden_sizes: [16]}}}}
  train: {{mb_size: 8, epochs: 1}}
streams:
  toy: {{name: "toy:toy_stream", args: {{n_experiences: 2}}}}
methods:
  Naive: {{}}
  Toy: {{name: "{HERE}:ToyMethod", args: {{every: 3}}}}
  ToyFail: {{name: "{HERE}:ToyMethod", args: {{every: 3, fail_after: 2}}}}
presets: {{cpu: {{}}}}
"""


def _cell(run: Path, cell_id: str) -> dict:
    (path,) = (run / "cells").glob(f"{cell_id}.json*")
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return json.loads(raw)


def test_the_toy_plugin_is_a_reports_mechanism():
    assert isinstance(ToyResetPlugin(3), ReportsMechanism)


def test_user_method_activity_in_cell_and_report(tmp_path):
    suite = tmp_path / "usermethod.yaml"
    suite.write_text(SUITE)
    run, rep = tmp_path / "run", tmp_path / "rep"
    assert cli.main(["run", str(suite), "--out", str(run), "--no-progress"]) == 0

    # 64 samples / 8 per minibatch = 8 iterations per experience: resets at 3, 6 | 9, 12, 15
    cell = _cell(run, "toy__Toy__seed0")
    assert cell["status"] == "ok", cell.get("traceback")
    act = cell["measures"]["activity"]["per_experience"]
    assert [(r["toy_resets"], r["toy_iterations"]) for r in act] == [(2, 8), (5, 16)]
    assert all("distance_from_init" in r and "dormant" in r for r in act)  # the runner's own
    assert cell["measures"]["history"]["toy"] == {"reset_at": [3, 6, 9, 12, 15]}
    assert (
        "toy_resets"
        not in _cell(run, "toy__Naive__seed0")["measures"]["activity"]["per_experience"][0]
    )

    bad = _cell(run, "toy__ToyFail__seed0")
    assert bad["status"] == "collapsed"
    assert bad["collapsed"] == {"reason": "toy: too many resets", "resets": 5}
    assert "toy: too many resets" in bad["error"]
    assert bad["metrics"]["accuracy_matrix"]  # trained to the end

    assert cli.main(["report", str(run), "--out", str(rep)]) == 0
    md = (rep / "report.md").read_text()
    section = md.split("## Other mechanism activity", 1)[1].split("\n## ", 1)[0]
    rows = [r for r in section.splitlines() if r.startswith("| toy |")]
    # the same counts on both seeds: mean 2 then 5, a zero-width interval
    assert "| toy | Toy | `toy_resets` | 2 ± 0 | 5 ± 0 |" in rows
    assert "| toy | Toy | `toy_iterations` | 8 ± 0 | 16 ± 0 |" in rows
    assert not any("| Naive |" in r for r in rows)  # Naive reports no mechanism
    assert "collapsed" in md and "toy: too many resets" in md  # listed apart, not averaged
