"""Small real streams for the metric tests (permuted MNIST, a few hundred samples, T = 3)
and the small strategy the metrics are run with."""

from __future__ import annotations

import warnings

import pytest
import torch
from avalanche.training.plugins import EvaluationPlugin

from avalanche_neumod import MLP, ExperienceTensors, FastNaive, tensor_benchmark


@pytest.fixture(scope="session")
def mnist_small(mnist_first):
    """The first 1,200 MNIST train and 600 test images (see ``mnist_first``)."""
    return mnist_first(True, 1200), mnist_first(False, 600)


def permuted_stream(mnist_small, n_experiences=3, n_train=240, n_test=200, seed=0):
    (xtr, ytr), (xte, yte) = mnist_small
    g = torch.Generator().manual_seed(seed)
    train, test = [], []
    for k in range(n_experiences):
        perm = torch.arange(784) if k == 0 else torch.randperm(784, generator=g)

        def p(x, perm=perm):
            return x.flatten(1)[:, perm].view(-1, 1, 28, 28)

        train.append(ExperienceTensors(p(xtr[:n_train]), ytr[:n_train], 0))
        test.append(ExperienceTensors(p(xte[:n_test]), yte[:n_test], 0))
    return tensor_benchmark(train, test)


@pytest.fixture
def make_pmnist(mnist_small):
    """``make_pmnist(n_experiences=3, n_train=240, n_test=200, seed=0)`` -> benchmark."""

    def make(**kwargs):
        return permuted_stream(mnist_small, **kwargs)

    return make


@pytest.fixture
def small_strategy():
    """``small_strategy(cls=FastNaive, plugins=(), evaluator=None, hidden=(16,), seed=0,
    metrics=(), **kw)``: ``cls`` on a fresh MLP 784-hidden-10 (after
    ``torch.manual_seed(seed)``), SGD lr 0.05, cross-entropy, minibatches of 16; ``metrics``
    (instead of ``evaluator``): an ``EvaluationPlugin`` of them without loggers; ``kw`` go
    to ``cls``."""

    def make(cls=FastNaive, plugins=(), evaluator=None, hidden=(16,), seed=0, metrics=(), **kw):
        if metrics:
            assert evaluator is None, "give metrics= or evaluator=, not both"
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="No loggers specified")
                evaluator = EvaluationPlugin(*metrics, loggers=[])
        torch.manual_seed(seed)
        model = MLP(784, hidden, 10)
        return cls(
            model=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
            criterion=torch.nn.CrossEntropyLoss(),
            train_mb_size=16,
            plugins=list(plugins),
            evaluator=evaluator,
            **kw,
        )

    return make
