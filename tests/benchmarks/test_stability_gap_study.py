"""The NGM stability-gap study script runs end to end, deterministically (tiny settings)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "stability_gap_study.py"


def _study():
    spec = importlib.util.spec_from_file_location("stability_gap_study", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_study_runs_and_is_deterministic(data_root, tmp_path):
    study = _study()
    args = [
        "--out", str(tmp_path), "--root", str(data_root), "--seeds", "0",
        "--streams", "split_mnist", "--methods", "ngm", "adam",
        "--iterations", "3", "--train-size", "600", "--test-size", "200",
        "--test-samples", "50",
    ]  # fmt: skip
    assert study.main(args) == 0
    run = json.loads((tmp_path / "runs" / "split_mnist__ngm__seed0.json").read_text())
    assert run["status"] == "ok" and run["boundaries"] == [0, 3, 6, 9, 12]
    assert run["curve"]["x"] == list(range(16))  # before the first update, then every update
    assert len(run["gains"]["entropy"]) == 15 and run["gains"]["experience_starts"][1] == 3
    assert all(0 <= a <= 1 for a in run["curve"]["acc"])
    report = (tmp_path / "report.md").read_text()
    assert "| NGM-SGD | 1 |" in report and "| Adam | 1 |" in report
    assert "vs Adam" in report and "convention" in report
    for fig in ("task1_accuracy.png", "task1_after_switch.png", "ngm_gains.png"):
        assert (tmp_path / fig).stat().st_size > 0
    # same seed, same run
    cfg = {
        "runs": str(tmp_path / "again"), "root": str(data_root), "lr": 0.01,
        "test_samples": 50, "iterations": {"split_mnist": 3}, "force": True, "threads": 1,
        "train_size": 600, "test_size": 200,
    }  # fmt: skip
    (tmp_path / "again").mkdir()
    (again,) = study.run_group("split_mnist", 0, ["ngm"], cfg)
    assert again["curve"] == run["curve"] and again["gains"] == run["gains"]
