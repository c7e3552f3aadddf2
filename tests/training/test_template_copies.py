"""FastTemplate's dispatch caches never travel: copies and pickles rebuild them."""

from __future__ import annotations

import copy
import pickle

import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
from avalanche.training.plugins import EvaluationPlugin

from avalanche_neumod.benchmarks import ExperienceTensors, tensor_benchmark
from avalanche_neumod.models import MLP
from avalanche_neumod.training import FastNaive


def _data(n: int, seed: int) -> ExperienceTensors:
    g = torch.Generator().manual_seed(seed)
    return ExperienceTensors(
        torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g), 0
    )


class _Counter(SupervisedPlugin):
    """Counts training iterations; copies the strategy after iteration ``at``."""

    def __init__(self, at: int = -1):
        super().__init__()
        self.at, self.n, self.copies = at, 0, None

    def after_training_iteration(self, strategy, **kwargs):
        self.n += 1
        if self.n == self.at:
            assert strategy._dispatch_cache  # the caches are in use here
            self.copies = (copy.deepcopy(strategy), pickle.dumps(strategy))


def _strategy(counter: _Counter) -> FastNaive:
    torch.manual_seed(0)
    model = MLP(6, (8,), 3)
    ev = EvaluationPlugin(
        accuracy_metrics(minibatch=True, experience=True), loss_metrics(epoch=True), loggers=[]
    )
    return FastNaive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        train_mb_size=8,
        eval_mb_size=16,
        plugins=[counter],
        evaluator=ev,
    )


def _run_on(s: FastNaive, exp, test_stream) -> tuple[list, dict]:
    torch.manual_seed(1)
    s.train(exp)
    return [p.detach().clone() for p in s.model.parameters()], s.eval(test_stream)


def test_copies_and_pickles_carry_no_dispatch_cache_and_train_identically():
    bm = tensor_benchmark([_data(32, 0), _data(32, 1)], [_data(16, 10), _data(16, 11)])
    counter = _Counter(at=4)  # the last iteration of the first experience
    s = _strategy(counter)
    s.train(bm.train_stream[0])
    deep, raw = counter.copies
    pickled = pickle.loads(raw)
    for clone in (deep, pickled):
        assert clone._dispatch_cache == {} and clone._dispatch_memo == {}
        assert clone.plugins[1] is not counter
    assert s._dispatch_memo  # the original keeps its own

    params, metrics = _run_on(s, bm.train_stream[1], bm.test_stream)
    for clone in (deep, pickled):
        p, m = _run_on(clone, bm.train_stream[1], bm.test_stream)
        assert all(torch.equal(a, b) for a, b in zip(p, params))
        assert m == metrics
        # the clone's handlers are its own plugins' (its counter counted, not the original's)
        assert clone.plugins[1].n == 8
    assert counter.n == 8


def test_reset_dispatch_empties_the_caches_and_they_are_rebuilt():
    bm = tensor_benchmark([_data(16, 0), _data(16, 1)], [_data(8, 10)])
    counter = _Counter()
    s = _strategy(counter)
    s.train(bm.train_stream[0])
    assert s._dispatch_memo
    s.reset_dispatch()
    assert s._dispatch_cache == {} and s._dispatch_memo == {}
    s.train(bm.train_stream[1])
    assert counter.n == 4 and s._dispatch_memo
