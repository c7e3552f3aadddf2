"""AccuracyMatrixMetric: alone in an EvaluationPlugin it gives Avalanche's Top1_Acc_Exp and
Top1_Acc_Stream values exactly, on Avalanche's Naive and on our fast path."""

from __future__ import annotations

import copy
import math
import pickle

import pytest
import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin

from avalanche_neumod.benchmarks import ExperienceTensors, tensor_benchmark
from avalanche_neumod.evaluation import AccuracyMatrixMetric, AccuracyRow, accuracy_matrix_metric
from avalanche_neumod.models import MLP
from avalanche_neumod.training import FastDataPlugin, FastNaive

TEST_SIZES = (23, 9, 31)  # unequal: the stream accuracy weighs experiences by size


def _data(n: int, seed: int) -> ExperienceTensors:
    g = torch.Generator().manual_seed(seed)
    return ExperienceTensors(
        torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g), 0
    )


def _bench():
    train = [_data(40, k) for k in range(len(TEST_SIZES))]
    return tensor_benchmark(train, [_data(n, 100 + k) for k, n in enumerate(TEST_SIZES)])


# (strategy class, extra arguments): Avalanche's Naive with its own data loading and with
# our FastDataPlugin; our FastNaive (lean dispatch) on the fast data path and without it
PATHS = {
    "naive": (Naive, {}),
    "naive+fast_data": (Naive, {"plugins": [FastDataPlugin()]}),
    "fast_naive": (FastNaive, {}),
    "fast_naive-fast_data": (FastNaive, {"fast_data": False}),
}


def _run(path: str, metrics: list) -> list:
    """Train each experience of ``_bench()`` and evaluate the test stream after each, from
    seed 0, with ``metrics`` in the evaluator: per evaluation, the returned metric dict
    (copied), and the model's hand-counted (correct, n) per test experience."""
    cls, kw = PATHS[path]
    bm = _bench()
    torch.manual_seed(0)
    model = MLP(6, (8,), 3)
    strategy = cls(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=8,
        eval_mb_size=7,  # minibatches of unequal sizes
        evaluator=EvaluationPlugin(*metrics, loggers=[]),
        **copy.deepcopy(kw),
    )
    out = []
    for exp in bm.train_stream:
        strategy.train(exp)
        res = dict(strategy.eval(bm.test_stream))
        model.eval()
        with torch.no_grad():
            counts = [
                (int((model(e.tensors.x).argmax(1) == e.tensors.y).sum()), len(e.tensors.y))
                for e in bm.test_stream
            ]
        out.append((res, counts))
    return out


@pytest.mark.parametrize("path", sorted(PATHS))
def test_alone_equals_avalanche_accuracy(path):
    """The metric alone, and Avalanche's accuracy metrics alone, on the same seeded run:
    equal values (exactly), which are the hand-counted ratios."""
    rows: list[AccuracyRow] = []

    class Keep(AccuracyMatrixMetric):  # the metric, also keeping every row it produced
        def after_eval(self, strategy):
            values = super().after_eval(strategy)
            rows.append(self.last)
            return values

    metric = Keep()
    ours = _run(path, [metric])
    theirs = _run(path, accuracy_metrics(experience=True, stream=True))
    assert len(rows) == len(theirs) == len(TEST_SIZES)
    for row, (res, counts), (own_res, _) in zip(rows, theirs, ours):
        assert row.stream == "test"
        assert sorted(row.experiences) == list(range(len(TEST_SIZES)))
        for j, (c, n) in enumerate(counts):
            avalanche = res[f"Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp{j:03d}"]
            assert row.experiences[j] == avalanche
            assert row.experiences[j] == pytest.approx(c / n, abs=1e-12)
            assert own_res[f"AccMatrix_Exp/eval_phase/test_stream/Task000/Exp{j:03d}"] == avalanche
        stream = res["Top1_Acc_Stream/eval_phase/test_stream/Task000"]
        assert row.stream_accuracy == stream
        assert own_res["AccMatrix_Stream/eval_phase/test_stream/Task000"] == stream
        total = sum(c for c, _ in counts) / sum(n for _, n in counts)
        assert row.stream_accuracy == pytest.approx(total, abs=1e-12)
        assert row.as_list(len(TEST_SIZES)) == [row.experiences[j] for j in range(3)]
    assert metric.result() is metric.last is rows[-1]


def test_stream_accuracy_weighs_by_samples_not_the_row_mean():
    """On unequal test experiences the stream accuracy is sum(correct) / sum(n); this run
    is one where that differs from the row's mean, so a mean would be caught."""
    metric = AccuracyMatrixMetric()
    (_, _), (_, _), (_, counts) = _run("fast_naive", [metric])
    row = metric.last.as_list(3)
    assert metric.last.stream_accuracy == pytest.approx(
        sum(c for c, _ in counts) / sum(TEST_SIZES), abs=1e-12
    )
    assert abs(metric.last.stream_accuracy - sum(row) / 3) > 1e-3


@pytest.mark.parametrize("path", ["naive", "fast_naive"])
def test_partial_evaluation_row_and_reset(path):
    """Evaluating part of the stream gives a row of those experiences (NaN elsewhere);
    each evaluation replaces the last row; ``reset`` forgets it."""
    cls, kw = PATHS[path]
    bm = _bench()
    torch.manual_seed(0)
    metric = AccuracyMatrixMetric()
    assert metric.result() is None
    model = MLP(6, (8,), 3)
    strategy = cls(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        train_mb_size=8,
        evaluator=EvaluationPlugin(metric, *accuracy_metrics(experience=True), loggers=[]),
        **kw,
    )
    strategy.train(bm.train_stream[0])
    res = strategy.eval(bm.test_stream[1:3])
    assert sorted(metric.last.experiences) == [1, 2]
    row = metric.last.as_list(3)
    assert math.isnan(row[0])
    assert row[1:] == [res[f"Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp00{j}"] for j in (1, 2)]
    assert metric.last.stream_accuracy == pytest.approx(
        (row[1] * TEST_SIZES[1] + row[2] * TEST_SIZES[2]) / (TEST_SIZES[1] + TEST_SIZES[2])
    )
    strategy.eval(bm.test_stream[0:1])
    assert sorted(metric.last.experiences) == [0]
    metric.reset()
    assert metric.result() is None


def test_as_list_rejects_an_experience_outside_the_row():
    row = AccuracyRow("test", {0: 0.5, 3: 0.25}, 0.4)
    assert row.as_list(4)[3] == 0.25
    with pytest.raises(ValueError, match="experience 3 of 'test' is outside a row of 2"):
        row.as_list(2)


def test_metric_pickles_with_its_last_row():
    """A checkpoint pickles the evaluator: the metric keeps its last row."""
    metric = AccuracyMatrixMetric()
    _run("fast_naive", [metric])
    back = pickle.loads(pickle.dumps(metric))
    assert back.last == metric.last
    assert copy.deepcopy(metric).last == metric.last


def test_accuracy_matrix_metric_finds_the_one_metric():
    m = AccuracyMatrixMetric()
    assert accuracy_matrix_metric(EvaluationPlugin(m, loggers=[])) is m
    assert (
        accuracy_matrix_metric(EvaluationPlugin(*accuracy_metrics(stream=True), loggers=[])) is None
    )
    two = EvaluationPlugin(m, AccuracyMatrixMetric(), loggers=[])
    with pytest.raises(ValueError, match="holds 2 AccuracyMatrixMetric"):
        accuracy_matrix_metric(two)
