"""The metrics inside an ordinary EvaluationPlugin, with Avalanche's strategies and loggers."""

from __future__ import annotations

import pytest
import torch
from avalanche.evaluation.metrics import accuracy_metrics, forgetting_metrics, loss_metrics
from avalanche.logging import CSVLogger, TensorboardLogger, TextLogger
from avalanche.training import EWC, Naive, Replay
from avalanche.training.plugins import EvaluationPlugin

from avalanche_neumod import MLP
from avalanche_neumod.evaluation import (
    KnowledgeTransferMetric,
    PlasticityMetric,
    StabilityGapMetric,
)

STRATEGIES = {
    "Naive": (Naive, {}),
    "EWC": (EWC, {"ewc_lambda": 10.0}),
    "Replay": (Replay, {"mem_size": 60}),
}


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_metrics_with_avalanche_strategies_and_loggers(make_pmnist, small_strategy, tmp_path, name):
    bm = make_pmnist(n_train=96, n_test=80)
    cls, extra = STRATEGIES[name]
    sg = StabilityGapMetric(bm.test_stream, samples_per_exp=40, eval_every=2, windows=(10, 100))
    transfer = KnowledgeTransferMetric(bm.test_stream, beta=3, eval_samples=40)
    text = open(tmp_path / "log.txt", "w")
    evaluator = EvaluationPlugin(
        accuracy_metrics(experience=True, stream=True),
        loss_metrics(epoch=True),
        forgetting_metrics(experience=True),
        sg,
        StabilityGapMetric(
            bm.test_stream, samples_per_exp=40, eval_every=2, convention="ngm", emit_curves=False
        ),
        transfer,
        PlasticityMetric(samples=50),
        loggers=[
            CSVLogger(str(tmp_path / "csv")),
            TensorboardLogger(str(tmp_path / "tb")),
            TextLogger(text),
        ],
    )
    s = small_strategy(cls, evaluator=evaluator, **extra)
    for exp in bm.train_stream:
        s.train(exp)
        s.eval(bm.test_stream)
    text.close()
    names = set(evaluator.get_all_metrics())
    for key in (
        "Top1_Acc_Stream/eval_phase/test_stream/Task000",
        "TrackedAcc/train_phase/test_stream/Exp002",
        "AvgMinAcc_Stream/train_phase/test_stream",
        "NGM_AvgMinAcc_Stream/train_phase/test_stream",
        "WF10_Stream/train_phase/test_stream",
        "WP100_Stream/train_phase/test_stream",
        "AvgStabilityGap_Stream/train_phase/test_stream",
        "LCA_F_Stream/train_phase/test_stream",
        "BKT_Mean_Stream/train_phase/test_stream",
        "DormantFraction/train_phase/train_stream",
        "EffectiveRank/train_phase/train_stream",
    ):
        assert key in names, key
    # curve points are logged at strictly increasing x
    xs = evaluator.get_all_metrics()["TrackedAcc/train_phase/test_stream/Exp000"][0]
    assert all(b > a for a, b in zip(xs, xs[1:]))
    assert transfer.complete
    assert list((tmp_path / "tb").glob("events.*")), "no TensorBoard event file"
    assert (tmp_path / "csv" / "eval_results.csv").exists()
    assert "LCA_F_Stream/train_phase/test_stream" in (tmp_path / "log.txt").read_text()


def test_metric_in_plugins_and_evaluator_says_so(make_pmnist):
    """One object in both places would record every point twice: refused."""
    bm = make_pmnist(n_train=32, n_test=32)
    for metric in (
        StabilityGapMetric(bm.test_stream, samples_per_exp=10),
        KnowledgeTransferMetric(bm.test_stream, beta=2, eval_samples=10),
    ):
        model = MLP(784, (8,), 10)
        s = Naive(
            model=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            criterion=torch.nn.CrossEntropyLoss(),
            plugins=[metric],
            evaluator=EvaluationPlugin(metric, loggers=[]),
        )
        with pytest.raises(RuntimeError, match="twice"):
            s.train(bm.train_stream[0])


def test_former_two_object_form_says_how(make_pmnist):
    bm = make_pmnist(n_train=32, n_test=32)
    sg = StabilityGapMetric(bm.test_stream, samples_per_exp=10)
    kt = KnowledgeTransferMetric(bm.test_stream, beta=2, eval_samples=10)
    with pytest.raises(TypeError, match="to_dict"):
        StabilityGapMetric(sg)
    with pytest.raises(TypeError, match="to_dict"):
        KnowledgeTransferMetric(kt, beta=2)
