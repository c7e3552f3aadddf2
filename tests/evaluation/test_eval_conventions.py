"""Avalanche's conventions: metrics that work alone, names after Avalanche's
``Name/<phase>_phase/<stream>_stream/...`` with the right phase, and a text log that prints
each value in the section of its phase."""

from __future__ import annotations

import io
import re

import pytest
import torch
from avalanche.evaluation.metric_utils import default_metric_name_template, generic_get_metric_name
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.logging import BaseLogger
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin

from avalanche_neumod.evaluation import (
    KnowledgeTransferMetric,
    PhasedInteractiveLogger,
    PhasedTextLogger,
    PlasticityMetric,
    StabilityGapMetric,
)
from avalanche_neumod.evaluation.stability_gap import stream_metric_name
from avalanche_neumod.evaluation.transfer import metric_name

SG_ARGS = dict(samples_per_exp=40, eval_every=2, seed=1)
KT_ARGS = dict(beta=2, eval_samples=40, seed=1)
OURS = re.compile(
    r"^(TrackedAcc|MinAcc_Exp|WCAcc_Exp|StabilityGap_Exp|StabilityGapAbs_Exp|RecoveryIters_Exp"
    r"|(NGM_)?(AvgAcc|AvgMinAcc|WCAcc)_Stream|AvgStabilityGap(Abs)?_Stream|AvgRecoveryIters_Stream"
    r"|W[FP]\d+_Stream|[BF]KT_(Half|Beta|Mean)_Stream|LCA0(_[FB])?_Stream|LCA_[FB]_Stream"
    r"|Avg(Final|End)Acc_Stream|DormantFraction|EffectiveRank|MeanAbsWeight|GradNorm)/"
)
SCHEME = re.compile(r"^(?P<name>[^/]+)/(?P<phase>train|eval)_phase/(?P<stream>[a-z]+)_stream(/|$)")


def _run(make, bm, metrics, plugins=(), loggers=(), eval_after=False):
    """Naive from ``make`` (the ``small_strategy`` fixture) with ``metrics`` on ``bm``."""
    ev = EvaluationPlugin(*metrics, loggers=list(loggers))
    s = make(Naive, plugins=plugins, evaluator=ev)
    for exp in bm.train_stream:
        s.train(exp)
        if eval_after:
            s.eval(bm.test_stream)
    return s, ev


def _ours(ev) -> dict:
    return {k: v for k, v in ev.get_all_metrics().items() if OURS.match(k)}


def test_metrics_alone_keep_what_they_emit(make_pmnist, small_strategy):
    """Alone in the EvaluationPlugin, each metric emits what it keeps (``to_dict``) and
    leaves the main run unchanged."""
    bm = make_pmnist(n_train=64, n_test=60)
    sg = StabilityGapMetric(test_stream=bm.test_stream, windows=(2,), **SG_ARGS)
    ktm = KnowledgeTransferMetric(test_stream=bm.test_stream, **KT_ARGS)
    s1, ev = _run(small_strategy, bm, [sg, ktm])
    assert ktm.complete
    emitted = _ours(ev)
    assert len(emitted) > 20 and "LCA_F_Stream/train_phase/test_stream" in emitted
    for i, c in sg.to_dict()["curves"].items():
        xs, ys = emitted[f"TrackedAcc/train_phase/test_stream/Exp{int(i):03d}"]
        assert (xs, ys) == (c["x"], c["acc"])
    for key, v in sg.scores(windows=(2,)).items():
        assert emitted[stream_metric_name(key)][1][-1] == pytest.approx(v, nan_ok=True), key
    for key, v in ktm.to_dict()["scores"].items():
        assert emitted[metric_name(key)][1][-1] == v, key
    # the main run is unchanged: the same weights as a run without metrics
    s0, _ = _run(small_strategy, bm, [])
    for p0, p1 in zip(s0.model.parameters(), s1.model.parameters()):
        assert torch.equal(p0, p1)


def test_metric_arguments_are_checked(make_pmnist):
    bm = make_pmnist(n_train=32, n_test=32)
    with pytest.raises(ValueError, match="exactly one"):
        StabilityGapMetric()  # no test stream
    with pytest.raises(ValueError, match="exactly one"):
        KnowledgeTransferMetric(beta=2)
    with pytest.raises(ValueError, match="beta"):
        KnowledgeTransferMetric(test_stream=bm.test_stream, beta=0)


class _PhaseSpy(BaseLogger):
    """Records, for every metric value, whether the strategy was training when it arrived."""

    def __init__(self):
        super().__init__()
        self.seen: dict[str, set[bool]] = {}

    def _note(self, strategy, metric_values, **kwargs) -> None:
        for mv in metric_values:
            self.seen.setdefault(mv.name, set()).add(bool(strategy.is_training))


for _cb in (
    "before_training_exp",
    "before_training_iteration",
    "after_training_iteration",
    "after_training_epoch",
    "after_training_exp",
    "after_training",
    "after_eval_exp",
    "after_eval",
):
    setattr(_PhaseSpy, _cb, _PhaseSpy._note)


def test_names_follow_avalanches_scheme_with_the_right_phase(make_pmnist, small_strategy):
    bm = make_pmnist(n_train=64, n_test=60)
    spy = _PhaseSpy()
    metrics = [
        accuracy_metrics(stream=True),
        StabilityGapMetric(test_stream=bm.test_stream, windows=(2,), **SG_ARGS),
        StabilityGapMetric(
            test_stream=bm.test_stream, convention="ngm", emit_curves=False, **SG_ARGS
        ),
        KnowledgeTransferMetric(test_stream=bm.test_stream, **KT_ARGS),
        PlasticityMetric(samples=30, every=3),
    ]
    _run(small_strategy, bm, metrics, loggers=[spy], eval_after=True)
    names = [n for n in spy.seen if OURS.match(n)]
    assert {
        "NGM_AvgMinAcc_Stream/train_phase/test_stream",
        "FKT_Half_Stream/train_phase/test_stream",
        "MinAcc_Exp/train_phase/test_stream",
        "TrackedAcc/train_phase/test_stream/Exp001",
        "DormantFraction/train_phase/train_stream",
    } <= set(names)
    assert "Top1_Acc_Stream/eval_phase/test_stream/Task000" in spy.seen
    for name in spy.seen:
        m = SCHEME.match(name)
        assert m, name
        # the phase in the name is the strategy's phase when the value was emitted
        assert spy.seen[name] == {m["phase"] == "train"}, name
        if OURS.match(name):
            stream = (
                "train"
                if m["name"] in ("DormantFraction", "EffectiveRank", "MeanAbsWeight", "GradNorm")
                else "test"
            )
            assert m["stream"] == stream, name
            # Avalanche's own template gives the same prefix
            prefix = generic_get_metric_name(
                default_metric_name_template,
                {"metric_name": m["name"], "phase_name": "train", "stream_name": stream},
            )
            assert name == prefix or name.startswith(prefix + "/"), name


def _sections(text: str) -> list[tuple[str, str]]:
    """(section, metric name) for every printed metric line."""
    out, section = [], None
    for line in text.splitlines():
        if "Start of training phase" in line:
            section = "train"
        elif "Start of eval phase" in line:
            section = "eval"
        elif line.startswith("\t") and " = " in line:
            out.append((section, line.strip().split(" = ")[0]))
    return out


def test_text_logger_prints_each_value_in_its_phase_section(make_pmnist, small_strategy):
    bm = make_pmnist(n_train=64, n_test=60)
    buf = io.StringIO()
    metrics = [
        accuracy_metrics(epoch=True, experience=True, stream=True),
        StabilityGapMetric(test_stream=bm.test_stream, windows=(2,), **SG_ARGS),
        KnowledgeTransferMetric(test_stream=bm.test_stream, **KT_ARGS),
        PlasticityMetric(samples=30),
    ]
    _run(small_strategy, bm, metrics, loggers=[PhasedTextLogger(buf)], eval_after=True)
    printed = _sections(buf.getvalue())
    names = {n for _, n in printed}
    for key in (
        "LCA_F_Stream/train_phase/test_stream",
        "WCAcc_Exp/train_phase/test_stream",
        "AvgMinAcc_Stream/train_phase/test_stream",
        "DormantFraction/train_phase/train_stream",
        "Top1_Acc_Epoch/train_phase/train_stream/Task000",
        "Top1_Acc_Stream/eval_phase/test_stream/Task000",
    ):
        assert key in names, key
    for section, name in printed:
        assert section == SCHEME.match(name)["phase"], (section, name)
    # the transfer scores come right after the end of the last training phase
    text = buf.getvalue()
    last_train_end = text.rindex("-- >> End of training phase << --")
    assert text.index("LCA_F_Stream/train_phase", last_train_end) < text.index(
        "-- >> Start of eval phase << --", last_train_end
    )


def test_interactive_logger_variant_prints_the_transfer_scores_in_training(
    make_pmnist, small_strategy, capsys
):
    bm = make_pmnist(n_train=48, n_test=40)
    metrics = [
        accuracy_metrics(stream=True),
        KnowledgeTransferMetric(test_stream=bm.test_stream, **KT_ARGS),
    ]
    _run(small_strategy, bm, metrics, loggers=[PhasedInteractiveLogger()], eval_after=True)
    printed = _sections(capsys.readouterr().out)
    assert ("train", "LCA_F_Stream/train_phase/test_stream") in printed
    assert ("eval", "Top1_Acc_Stream/eval_phase/test_stream/Task000") in printed
    assert all(section == SCHEME.match(name)["phase"] for section, name in printed)
