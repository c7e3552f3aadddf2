"""The cell reads its accuracy matrix from an ``AccuracyMatrixMetric`` (no metric names):
its rows are Avalanche's Top1_Acc_Exp values, also after resuming from a checkpoint
written before the metric existed."""

from __future__ import annotations

import json

import pytest

from avalanche_neumod.evaluation import AccuracyMatrixMetric, accuracy_matrix_metric
from avalanche_neumod.experiment import checkpoint as ckpt
from avalanche_neumod.experiment import run_folder as results
from avalanche_neumod.experiment.cell import run_cell
from avalanche_neumod.experiment.suite import expand, load_suite


def _cell(tiny_suite, cell_id: str = "toy__FastNaive__seed0") -> dict:
    return {c["cell_id"]: c for c in expand(load_suite(tiny_suite))}[cell_id]


def _metrics(r: dict) -> dict:
    return json.loads(json.dumps(results._clean(r["metrics"])))


@pytest.mark.parametrize("cell_id", ["toy__FastNaive__seed0", "toy__Naive__seed0"])
def test_rows_are_avalanches_experience_accuracies(tiny_suite, monkeypatch, cell_id):
    """Each stored row and stream accuracy equals the Top1_Acc_Exp / Top1_Acc_Stream
    values Avalanche's metrics report in the same evaluation (the EvaluationPlugin keeps
    both), for our FastNaive and Avalanche's Naive."""
    from avalanche.training.templates import SupervisedTemplate

    seen: list[dict] = []
    real_eval = SupervisedTemplate.eval

    def eval_and_keep(self, *a, **k):
        res = real_eval(self, *a, **k)
        assert accuracy_matrix_metric(self.evaluator) is not None
        seen.append(dict(res))
        return res

    monkeypatch.setattr(SupervisedTemplate, "eval", eval_and_keep)
    r = run_cell(_cell(tiny_suite, cell_id))
    assert r["status"] == "ok", r.get("traceback")
    m = r["metrics"]
    assert len(seen) == len(m["accuracy_matrix"]) == 3
    for res, row, stream in zip(seen, m["accuracy_matrix"], m["stream_accuracy"]):
        assert row == [
            res[f"Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp00{j}"] for j in range(3)
        ]
        assert stream == res["Top1_Acc_Stream/eval_phase/test_stream/Task000"]


def test_resume_from_a_checkpoint_without_the_metric(tiny_suite, tmp_path, monkeypatch):
    """A checkpoint whose evaluator lacks the metric (written before it existed): the
    resumed cell adds one and its result equals the uninterrupted cell's."""
    cfg = _cell(tiny_suite)
    full = run_cell(cfg)
    assert full["status"] == "ok", full.get("traceback")

    class Killed(BaseException):
        """A kill: not an Exception, so the cell does not record it."""

    path = tmp_path / "c.ckpt"
    real = ckpt.save
    calls = []

    def strip_save_die(path_, cell_id, config, state, refs):
        calls.append(state["done"])
        if len(calls) < 2:
            return real(path_, cell_id, config, state, refs)
        ev = state["strategy"].evaluator
        ev.metrics = [m for m in ev.metrics if not isinstance(m, AccuracyMatrixMetric)]
        real(path_, cell_id, config, state, refs)
        raise Killed

    monkeypatch.setattr(ckpt, "save", strip_save_die)
    with pytest.raises(Killed):
        run_cell(cfg, checkpoint=str(path))
    monkeypatch.setattr(ckpt, "save", real)
    assert calls == [1, 2]
    refs = ckpt.stream_refs(_stream(cfg))
    saved = ckpt.load(str(path), cfg["cell_id"], cfg, refs)
    assert accuracy_matrix_metric(saved["strategy"].evaluator) is None

    resumed = run_cell(cfg, checkpoint=str(path))
    assert resumed["status"] == "ok", resumed.get("traceback")
    assert resumed["resumed"]["from_experience"] == 2
    assert _metrics(resumed) == _metrics(full)


def _stream(cfg: dict):
    from avalanche_neumod.experiment import registry

    st = cfg["stream"]
    return registry.build_stream(st["name"], st["args"], cfg["seed"], None, st.get("wrappers"))
