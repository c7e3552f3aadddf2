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


def test_permuted_mnist_uses_the_authors_3x200(data_root, tmp_path):
    study = _study()
    args = [
        "--out", str(tmp_path), "--root", str(data_root), "--seeds", "0",
        "--streams", "ngm_permuted_mnist", "--methods", "sgd",
        "--train-size", "300", "--test-size", "100", "--test-samples", "20",
    ]  # fmt: skip
    assert study.main(args) == 0
    run = json.loads((tmp_path / "runs" / "ngm_permuted_mnist__sgd__seed0.json").read_text())
    assert run["boundaries"] == [0, 200, 400] and run["config"]["iterations"] == 200
    report = (tmp_path / "report.md").read_text()
    assert "3 experiences x 200 iterations" in report
    assert "Where this differs from the authors' runs" in report and "42..46" in report


def test_report_statistics_are_nan_aware():
    study = _study()
    nan = float("nan")
    assert study._ms([0.1, nan, 0.3]) == "20.0 (10.0) [1 NaN]"
    assert study._ms([nan]) == "NaN [1 NaN]"

    def run(method, seed, sg, acc):
        s = {"avg_SG": sg, "avg_SG_abs": sg, "avg_ACC": acc, "WC_ACC": acc}
        return {"seed": seed, "method": method, "scores_ngm": s}

    by = {
        ("s", "ngm"): [run("ngm", 0, 0.1, 0.9), run("ngm", 1, nan, 0.9), run("ngm", 2, -0.1, 0.9)],
        ("s", "adam"): [
            run("adam", 0, 0.2, 0.9),
            run("adam", 1, 0.2, 0.9),
            run("adam", 2, 0.3, 0.9),
        ],
    }
    (line, *_) = study._verdict(by, "s")
    # the NaN seed is left out of the pair count and of the mean difference
    assert "NGM lower in 2/2 paired seeds" in line and "avg-SG -25.0 points" in line
