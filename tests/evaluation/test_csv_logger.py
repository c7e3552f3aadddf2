"""MetricsCSVLogger: every metric an EvaluationPlugin holds, one long-format CSV row per value."""

from __future__ import annotations

import copy
import csv
import math
import pickle
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from avalanche.evaluation.metric_results import AlternativeValues, MetricValue
from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
from avalanche.logging import CSVLogger, TensorboardLogger, TextLogger
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from PIL import Image

from avalanche_neumod.evaluation import (
    KnowledgeTransferMetric,
    MetricsCSVLogger,
    PlasticityMetric,
    StabilityGapMetric,
)
from avalanche_neumod.evaluation.csv_logger import COLUMNS


def read_rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def mv(name, value, x=0) -> MetricValue:
    return MetricValue(None, name, value, x)


def test_every_metric_of_the_evaluator_is_in_the_csv(
    make_pmnist, small_strategy, tmp_path, monkeypatch
):
    """With Avalanche's text, TensorBoard, CSV and W&B (offline) loggers beside it, the CSV
    holds every (name, x, value) the EvaluationPlugin collected, ours and Avalanche's."""
    wandb = pytest.importorskip("wandb", reason="wandb is not importable: W&B not exercised")
    from avalanche.logging import WandBLogger

    bm = make_pmnist(n_train=64, n_test=40)
    sg = StabilityGapMetric(bm.test_stream, samples_per_exp=20, eval_every=2)
    transfer = KnowledgeTransferMetric(bm.test_stream, beta=2, eval_samples=20)
    text = open(tmp_path / "log.txt", "w")
    loggers = [TextLogger(text), TensorboardLogger(str(tmp_path / "tb")), CSVLogger(str(tmp_path))]
    # Avalanche 0.6.0's WandBLogger against wandb >= 0.28.2: it reads wandb.viz.CustomChart
    # (now wandb.plot.CustomChart; ContinualAI/avalanche#1674) and, without a run id,
    # calls the removed wandb.util.generate_id
    if not hasattr(wandb, "viz"):
        monkeypatch.setattr(
            wandb, "viz", SimpleNamespace(CustomChart=wandb.plot.CustomChart), raising=False
        )
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    wandb_logger = WandBLogger(
        project_name="neumod-test",
        run_name="csv",
        dir=str(tmp_path),
        save_code=False,
        params={"id": "neumod-csv-test"},
    )
    ours = MetricsCSVLogger(tmp_path / "csvlogs" / "metrics.csv")
    evaluator = EvaluationPlugin(
        accuracy_metrics(minibatch=True, experience=True, stream=True),
        loss_metrics(epoch=True, stream=True),
        sg,
        transfer,
        PlasticityMetric(samples=30),
        loggers=[*loggers, wandb_logger, ours],
    )
    s = small_strategy(Naive, evaluator=evaluator)
    try:
        for exp in bm.train_stream:
            s.train(exp)
            s.eval(bm.test_stream)
    finally:
        wandb_logger.wandb.finish()
        text.close()
        ours.close()
    held = evaluator.get_all_metrics()
    rows = read_rows(tmp_path / "csvlogs" / "metrics.csv")
    logged: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        logged.setdefault(r["name"], []).append((int(r["x"]), float(r["value"])))
    assert set(logged) == set(held)
    for name, (xs, values) in held.items():
        assert logged[name] == [(int(x), float(v)) for x, v in zip(xs, values)], name
    # our metrics and Avalanche's are both there, with their parsed fields
    for prefix in (
        "Top1_Acc_Stream",
        "TrackedAcc",
        "LCA_F_Stream",
        "DormantFraction",
        "AvgMinAcc_Stream",
    ):
        assert any(n.startswith(prefix + "/") for n in logged), prefix
    acc = [r for r in rows if r["name"] == "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp002"]
    assert acc and all(
        (r["phase"], r["stream"], r["task"], r["experience"]) == ("eval", "test", "0", "2")
        for r in acc
    )
    assert ours.skipped == set()
    # the other loggers ran alongside
    assert list((tmp_path / "tb").glob("events.*"))
    assert "Top1_Acc_Stream" in (tmp_path / "log.txt").read_text()
    assert list(tmp_path.glob("wandb/offline-run-*"))


def test_dicts_are_flattened_and_non_scalars_skipped(tmp_path):
    path = tmp_path / "m.csv"
    with MetricsCSVLogger(path) as log:
        log.log_metrics(
            [
                mv("Scores/eval_phase/test_stream", {"a": 1.5, "b": {"c": 2}}, 7),
                mv("T/train_phase/train_stream", torch.tensor(0.25), 8),
                mv("N/train_phase/train_stream", np.float32(0.5), 8),
                mv("Flag/eval_phase/test_stream", True, 9),
                mv("Alt/eval_phase/test_stream", AlternativeValues("text", 3.0), 9),
                mv("Hist/train_phase/train_stream", torch.ones(5), 9),
                mv("Curve/train_phase/test_stream", [0.1, 0.2], 9),
                mv("Img/eval_phase/test_stream", Image.new("RGB", (2, 2)), 9),
                mv("Note", "a string", 9),
            ]
        )
    rows = read_rows(path)
    assert [(r["name"], r["x"], r["value"]) for r in rows] == [
        ("Scores/eval_phase/test_stream/a", "7", "1.5"),
        ("Scores/eval_phase/test_stream/b/c", "7", "2"),
        ("T/train_phase/train_stream", "8", "0.25"),
        ("N/train_phase/train_stream", "8", "0.5"),
        ("Flag/eval_phase/test_stream", "9", "1"),
        ("Alt/eval_phase/test_stream", "9", "3.0"),
    ]
    assert log.skipped == {
        "Hist/train_phase/train_stream",
        "Curve/train_phase/test_stream",
        "Img/eval_phase/test_stream",
        "Note",
    }


def test_names_are_parsed_where_they_follow_avalanche(tmp_path):
    path = tmp_path / "m.csv"
    with MetricsCSVLogger(path) as log:
        log.log_metrics(
            [
                mv("Top1_Acc_Exp/eval_phase/test_stream/Task003/Exp012", 0.5),
                mv("DormantFraction/train_phase/train_stream/layers.0", 0.1),
                mv("plain_name", math.nan),
            ]
        )
    got = [tuple(r[c] for c in COLUMNS[3:]) for r in read_rows(path)]
    assert got == [("eval", "test", "12", "3"), ("train", "train", "", ""), ("", "", "", "")]
    assert math.isnan(float(read_rows(path)[2]["value"]))


def test_appends_flushes_each_event_and_reopens_after_close(tmp_path):
    path = tmp_path / "sub" / "m.csv"
    log = MetricsCSVLogger(path)
    log.log_metrics([mv("A/eval_phase/test_stream", 1.0, 1)])
    assert len(read_rows(path)) == 1  # on disk before any close
    log.close()
    log.close()  # idempotent
    log.log_metrics([mv("A/eval_phase/test_stream", 2.0, 2)])  # reopens, appends
    log.close()
    again = MetricsCSVLogger(path)  # a second run appends below, one header
    again.log_metrics([mv("A/eval_phase/test_stream", 3.0, 3)])
    again.close()
    assert [r["value"] for r in read_rows(path)] == ["1.0", "2.0", "3.0"]
    assert path.read_text().count("name,x,value") == 1
    fresh = MetricsCSVLogger(path, append=False)
    fresh.close()
    assert read_rows(path) == []


def test_bad_paths_raise(tmp_path):
    with pytest.raises(ValueError, match="folder"):
        MetricsCSVLogger(tmp_path)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="columns"):
        MetricsCSVLogger(other)


def test_copies_and_pickles_keep_writing_to_the_file(tmp_path):
    path = tmp_path / "m.csv"
    log = MetricsCSVLogger(path)
    log.log_metrics([mv("A", 1.0)])
    for clone in (copy.deepcopy(log), pickle.loads(pickle.dumps(log))):
        clone.log_metrics([mv("B", 2.0)])
        clone.close()
    log.close()
    assert Counter(r["name"] for r in read_rows(path)) == {"A": 1, "B": 2}
