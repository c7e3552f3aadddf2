"""The observer contract: forks of a strategy (probes) leave observers out."""

from __future__ import annotations

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import EvaluationPlugin

from avalanche_neumod.benchmarks import ExperienceTensors, tensor_benchmark
from avalanche_neumod.evaluation import KnowledgeTransferMetric, StabilityGapMetric
from avalanche_neumod.evaluation.probes import fork_strategy, is_observer
from avalanche_neumod.experiment.monitor import TrainMonitor
from avalanche_neumod.models import MLP
from avalanche_neumod.observer import Observer
from avalanche_neumod.training import FastNaive


def _data(n: int, seed: int) -> ExperienceTensors:
    g = torch.Generator().manual_seed(seed)
    return ExperienceTensors(
        torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g), 0
    )


class _MyObserver(Observer, SupervisedPlugin):
    pass


class _Trainer(SupervisedPlugin):
    pass


class _Foreign(SupervisedPlugin):
    """A plugin that cannot derive from Observer (someone else's)."""


def _strategy(plugins, metrics=()) -> FastNaive:
    model = MLP(6, (8,), 3)
    return FastNaive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        train_mb_size=8,
        plugins=plugins,
        evaluator=EvaluationPlugin(*metrics, loggers=[]),
    )


def test_library_observers_declare_the_contract():
    for cls in (TrainMonitor, StabilityGapMetric, KnowledgeTransferMetric):
        assert issubclass(cls, Observer)
        assert not hasattr(cls, "neumod_observer")


def test_fork_drops_observers_and_excluded_types_only():
    mon, mine, trainer, foreign = TrainMonitor(), _MyObserver(), _Trainer(), _Foreign()
    s = _strategy([mon, mine, trainer, foreign])
    assert is_observer(mon) and is_observer(mine) and not is_observer(trainer)
    assert not is_observer(foreign) and is_observer(foreign, exclude=[_Foreign])
    kept = [type(p) for p in fork_strategy(s).plugins]
    assert TrainMonitor not in kept and _MyObserver not in kept
    assert _Trainer in kept and _Foreign in kept
    kept = [type(p) for p in fork_strategy(s, exclude=[_Foreign]).plugins]
    assert _Trainer in kept and _Foreign not in kept


def test_the_old_marker_still_works_with_a_deprecation_warning():
    class Marked(SupervisedPlugin):
        neumod_observer = True

    with pytest.warns(DeprecationWarning, match="Observer"):
        assert is_observer(Marked())


class _Bar:
    """A progress bar stub: a shared resource (a terminal), never copied."""

    def __init__(self):
        self.n = 0

    def update(self, k: int) -> None:
        self.n += k

    def __deepcopy__(self, memo):
        return self


def test_probes_do_not_reach_the_training_monitor():
    bm = tensor_benchmark([_data(32, k) for k in range(3)], [_data(16, 10 + k) for k in range(3)])
    mon = TrainMonitor(log_every=1, pbar=_Bar())
    kt = KnowledgeTransferMetric(bm.test_stream, beta=2, eval_samples=16)
    s = _strategy([mon], [kt])
    for exp in bm.train_stream:
        s.train(exp, eval_streams=[])
    assert kt.complete and kt.probe_updates > 0
    # 3 experiences x 4 minibatches: the probes' updates are not counted
    assert mon.iteration == 12 and mon.boundaries == [0, 4, 8]
    assert mon.pbar.n == 12
