"""The lean evaluation path: what metrics and loggers receive, the RNG stream, the stock path."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from avalanche.benchmarks.utils.data_loader import SingleDatasetDataLoader, TaskBalancedDataLoader
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metric_definitions import GenericPluginMetric
from avalanche.evaluation.metric_results import MetricValue
from avalanche.evaluation.metrics import accuracy_metrics, forgetting_metrics, loss_metrics
from avalanche.logging import BaseLogger, CSVLogger
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.templates import SupervisedTemplate
from avalanche.training.templates.base_sgd import BaseSGDTemplate
from toy_runs import toy_bench, toy_strategy

from avalanche_neumod.benchmarks.tensor_data import _TensorSamples
from avalanche_neumod.models import MLP
from avalanche_neumod.training import FastDataPlugin, FastNaive, TensorBatchLoader
from avalanche_neumod.training.template import _GENERIC_METRIC_ACTS, _metric_acts_on


def _bench(n_exp=3, n=40, n_test=23):
    return toy_bench(n_exp, n, n_test)


class _Recorder(BaseLogger):
    """Records every non-empty batch of metric values handed to the logger, in order,
    and the values it holds when its own callbacks run."""

    def __init__(self):
        super().__init__()
        self.values: list = []
        self.at_callbacks: list = []

    def log_metrics(self, metric_values):
        if metric_values:
            self.values.append([(v.name, v.value, v.x_plot) for v in metric_values])

    def after_eval_exp(self, strategy, metric_values, **kwargs):
        self.at_callbacks.append(("after_eval_exp", strategy.experience.current_experience))

    def after_training_epoch(self, strategy, metric_values, **kwargs):
        self.at_callbacks.append(("after_training_epoch", len(metric_values)))


class _Publisher(SupervisedPlugin):
    """Publishes a value outside any metric (as a plugin may), during training."""

    def after_backward(self, strategy, **kwargs):
        n = strategy.clock.train_iterations
        if n % 3 == 0:
            strategy.evaluator.publish_metric_value(MetricValue(self, "published", float(n), n))


def _cycle(cls, plugins, tmp: Path):
    """Train each experience, evaluate the whole test stream after each: every metric
    and logger output, the last metrics and the final parameters."""
    bm = _bench()
    torch.manual_seed(0)
    model = MLP(6, (8,), 3)
    rec = _Recorder()
    ev = EvaluationPlugin(
        accuracy_metrics(minibatch=True, epoch=True, experience=True, stream=True),
        loss_metrics(minibatch=True, epoch=True, experience=True, stream=True),
        forgetting_metrics(experience=True, stream=True),
        loggers=[rec, CSVLogger(log_folder=str(tmp))],
    )
    s = toy_strategy(
        cls,
        model=model,
        train_mb_size=8,
        eval_mb_size=10,
        evaluator=ev,
        plugins=plugins + [_Publisher()],
    )
    torch.manual_seed(5)
    last = []
    for exp in bm.train_stream:
        s.train(exp, eval_streams=[])
        last.append(s.eval(bm.test_stream))
    ev.loggers[1].close()
    csv = {p.name: p.read_text() for p in sorted(tmp.iterdir())}
    params = [p.detach().clone() for p in model.parameters()]
    return (
        {k: (list(x), list(v)) for k, (x, v) in ev.get_all_metrics().items()},
        last,
        rec,
        csv,
        params,
    )


def test_metric_and_logger_values_equal_to_the_stock_evaluation(tmp_path):
    """The same seeded train/eval cycles through Avalanche's evaluation (stock loader and
    dispatch: Naive with a training-only FastDataPlugin) and through ours (Naive with a
    FastDataPlugin; FastNaive): every metric value, every value a logger receives, the CSV
    logger's files and the trained parameters are identical."""
    runs = {
        "stock": _cycle(Naive, [FastDataPlugin(eval=False)], tmp_path / "stock"),
        "plugin": _cycle(Naive, [FastDataPlugin()], tmp_path / "plugin"),
        "fast": _cycle(FastNaive, [], tmp_path / "fast"),
    }
    ref_all, ref_last, ref_rec, ref_csv, ref_params = runs["stock"]
    assert any("Top1_Acc_Exp/eval_phase" in k for k in ref_all)
    assert any("Loss_Stream/eval_phase" in k for k in ref_all)
    assert any("StreamForgetting" in k for k in ref_all)
    assert "published" in ref_all and ref_rec.values
    assert ref_csv["eval_results.csv"].count("\n") > 9
    for name in ("plugin", "fast"):
        all_metrics, last, rec, csv, params = runs[name]
        assert all_metrics == ref_all, name
        assert last == ref_last, name
        assert rec.values == ref_rec.values, name
        assert rec.at_callbacks == ref_rec.at_callbacks, name
        assert csv == ref_csv, name
        assert all(torch.equal(a, b) for a, b in zip(params, ref_params)), name


class _LoaderSpy(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.train, self.eval = set(), set()

    def before_training_iteration(self, strategy, **kwargs):
        self.train.add(type(strategy.dataloader))

    def before_eval_iteration(self, strategy, **kwargs):
        self.eval.add(type(strategy.dataloader))


@pytest.mark.parametrize("cls", [FastNaive, Naive])
def test_evaluation_slices_our_tensors(cls, monkeypatch):
    """Evaluation batches come from our tensors: no per-sample fetch, our loader."""
    fetched = []
    original = _TensorSamples.__getitem__
    monkeypatch.setattr(
        _TensorSamples, "__getitem__", lambda self, i: fetched.append(i) or original(self, i)
    )
    spy = _LoaderSpy()
    s = toy_strategy(
        cls,
        train_mb_size=8,
        eval_mb_size=10,
        evaluator=EvaluationPlugin(accuracy_metrics(experience=True), loggers=[]),
        plugins=[FastDataPlugin(), spy],
    )
    bm = _bench(n_exp=2)
    s.train(bm.train_stream[0], eval_streams=[])
    s.eval(bm.test_stream)
    assert spy.train == spy.eval == {TensorBatchLoader}
    assert fetched == []


def test_fast_template_builds_neither_stock_loader_nor_adapted_dataset(monkeypatch):
    built = []
    for klass in (SingleDatasetDataLoader, TaskBalancedDataLoader):
        init = klass.__init__
        monkeypatch.setattr(
            klass, "__init__", lambda self, *a, _i=init, **k: built.append(1) or _i(self, *a, **k)
        )
    s = toy_strategy(
        FastNaive,
        evaluator=EvaluationPlugin(accuracy_metrics(experience=True), loggers=[]),
    )
    deferred = []

    class Check(SupervisedPlugin):
        def before_eval_iteration(self, strategy, **kwargs):
            deferred.append(strategy.adaptation_deferred)

    s.plugins.append(Check())
    bm = _bench(n_exp=2)
    s.train(bm.train_stream[0], eval_streams=[])
    s.eval(bm.test_stream)
    assert built == [] and deferred == [True, True]


def test_adapted_dataset_is_avalanches_when_read_or_replaced():
    """A plugin reading ``adapted_dataset`` gets Avalanche's eval-mode adaptation; one
    replacing it gets the stock loader over its dataset, as in Avalanche."""
    seen = []

    class Reader(SupervisedPlugin):
        def after_eval_dataset_adaptation(self, strategy, **kwargs):
            ds = strategy.adapted_dataset
            seen.append((len(ds), ds._flat_data._transform_groups.current_group))
            if strategy.experience.current_experience == 1:
                strategy.adapted_dataset = ds.subset(range(5))

        def after_eval_iteration(self, strategy, **kwargs):
            seen.append(len(strategy.mb_y))

    s = toy_strategy(
        FastNaive,
        eval_mb_size=100,
        evaluator=EvaluationPlugin(accuracy_metrics(experience=True), loggers=[]),
        plugins=[Reader()],
    )
    bm = _bench(n_exp=2, n_test=23)
    with pytest.warns(UserWarning, match="differs"):
        s.eval(bm.test_stream)
    assert seen == [(23, "eval"), 23, (23, "eval"), 5]


def test_eval_draws_from_the_global_rng_as_the_stock_loader():
    bm = _bench()
    states = []
    for cls, plugins in ((Naive, []), (Naive, [FastDataPlugin()]), (FastNaive, [])):
        s = toy_strategy(
            cls,
            eval_mb_size=7,
            evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]),
            plugins=plugins,
        )
        torch.manual_seed(3)
        s.eval(bm.test_stream)
        states.append(torch.get_rng_state())
    torch.manual_seed(3)
    untouched = torch.get_rng_state()
    assert not torch.equal(states[0], untouched)  # the stock loader draws
    assert all(torch.equal(st, states[0]) for st in states[1:])


def test_stock_avalanche_without_the_plugin_is_untouched():
    """Importing and using this library patches nothing in Avalanche: a Naive without a
    FastDataPlugin builds its stock loaders, dispatches with Avalanche's own methods and
    reports the accuracy of its model."""
    assert SupervisedTemplate._before_eval_exp is BaseSGDTemplate._before_eval_exp
    assert SupervisedTemplate.make_eval_dataloader is BaseSGDTemplate.make_eval_dataloader
    assert "adapted_dataset" not in vars(SupervisedTemplate)
    spy = _LoaderSpy()
    s = toy_strategy(
        Naive,
        train_mb_size=8,
        eval_mb_size=10,
        evaluator=EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loggers=[]),
        plugins=[spy],
    )
    model = s.model
    bm = _bench(n_exp=2)
    s.train(bm.train_stream[0], eval_streams=[])
    metrics = s.eval(bm.test_stream)
    assert spy.train == {TaskBalancedDataLoader} and spy.eval == {SingleDatasetDataLoader}
    with torch.no_grad():
        model.eval()
        hits = [(model(e.tensors.x).argmax(1) == e.tensors.y).sum().item() for e in bm.test_stream]
    total = sum(len(e.tensors) for e in bm.test_stream)
    assert metrics["Top1_Acc_Stream/eval_phase/test_stream/Task000"] == pytest.approx(
        sum(hits) / total, abs=1e-12
    )


class _SpyMetric(GenericPluginMetric):
    """A GenericPluginMetric whose hooks are Avalanche's own: records whether they act."""

    def __init__(self, reset_at, emit_at, mode):
        super().__init__(None, reset_at=reset_at, emit_at=emit_at, mode=mode)
        self.acted = False

    def reset(self):
        self.acted = True

    def update(self, strategy):
        self.acted = True

    def result(self):
        return 0.0

    def _package_result(self, strategy):
        self.acted = True


def test_generic_metric_table_matches_avalanche():
    """Every GenericPluginMetric hook, every mode and reset/emit point: our predicate says
    it acts exactly when Avalanche's hook does something."""
    hooks = {e for e in vars(GenericPluginMetric) if e.startswith(("before_", "after_"))}
    assert hooks == set(_GENERIC_METRIC_ACTS)
    points = ("iteration", "epoch", "experience", "stream", "never")
    checked = 0
    for mode, reset_at, emit_at, event in itertools.product(
        ("train", "eval"), points, points[:-1], sorted(hooks)
    ):
        try:
            m = _SpyMetric(reset_at, emit_at, mode)
        except AssertionError:  # a combination Avalanche refuses
            continue
        getattr(m, event)(None)
        assert _metric_acts_on(m, event) == m.acted, (mode, reset_at, emit_at, event)
        checked += 1
    assert checked > 300


def test_periodic_evaluation_inside_training_matches_avalanche():
    """``eval_every`` evaluates inside ``train`` (Avalanche saves and restores the training
    state around it): the same metric values and parameters as Avalanche's with the plugin."""
    bm = _bench(n_exp=2)
    runs = []
    for cls in (Naive, FastNaive):
        torch.manual_seed(0)
        ev = EvaluationPlugin(
            accuracy_metrics(epoch=True, experience=True, stream=True),
            loss_metrics(experience=True),
            loggers=[],
        )
        s = toy_strategy(
            cls,
            train_mb_size=8,
            train_epochs=2,
            eval_mb_size=10,
            eval_every=1,
            evaluator=ev,
            plugins=[FastDataPlugin()],
        )
        torch.manual_seed(1)
        for exp in bm.train_stream:
            s.train(exp, eval_streams=[bm.test_stream])
        runs.append(
            (dict(ev.get_all_metrics()), [p.detach().clone() for p in s.model.parameters()])
        )
    (m_stock, p_stock), (m_fast, p_fast) = runs
    assert any("eval_phase/test_stream" in k for k in m_stock)
    assert {k: (list(x), list(v)) for k, (x, v) in m_fast.items()} == {
        k: (list(x), list(v)) for k, (x, v) in m_stock.items()
    }
    assert all(torch.equal(a, b) for a, b in zip(p_fast, p_stock))


def test_plugins_metrics_and_loggers_added_later_are_dispatched():
    """The dispatch is reused only while the plugins, metrics and loggers are the same:
    one added between evaluations is called from the next one on."""
    bm = _bench(n_exp=2)
    model = MLP(6, (8,), 3)
    ev = EvaluationPlugin(accuracy_metrics(experience=True), loggers=[])
    s = toy_strategy(
        FastNaive,
        model=model,
        eval_mb_size=10,
        evaluator=ev,
    )
    s.eval(bm.test_stream)
    assert not any("Stream" in k for k in ev.get_last_metrics())
    ev.metrics.extend(accuracy_metrics(stream=True))
    rec = _Recorder()
    ev.loggers.append(rec)
    spy = _LoaderSpy()
    s.plugins.append(spy)
    metrics = s.eval(bm.test_stream)
    assert "Top1_Acc_Stream/eval_phase/test_stream/Task000" in metrics
    assert spy.eval == {TensorBatchLoader}
    assert [c for c, _ in rec.at_callbacks] == ["after_eval_exp", "after_eval_exp"]
    assert any(n.startswith("Top1_Acc_Stream") for batch in rec.values for n, _, _ in batch)
