"""Every baseline strategy trains on a small real Permuted MNIST stream and beats chance;
the plugins also work inside Avalanche's own strategies."""

from __future__ import annotations

import pytest
import torch
from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
from avalanche.training import EWC, Replay
from avalanche.training.plugins import EvaluationPlugin

from avalanche_neumod.benchmarks import ExperienceTensors, tensor_benchmark
from avalanche_neumod.models import MLP
from avalanche_neumod.training.maml import MAML
from avalanche_neumod.training.plugins.cbp import CBPPlugin
from avalanche_neumod.training.plugins.redo import ReDoPlugin
from avalanche_neumod.training.strategies import (
    CBP,
    CReLU,
    L2Init,
    L2InitEWC,
    ReDo,
    ShrinkPerturb,
)

N_EXP, N_TRAIN, N_TEST = 3, 500, 200


@pytest.fixture(scope="module")
def permuted_mnist(mnist_first):
    """3 experiences x 500 training (200 test) images of Permuted MNIST, built in the test."""
    g = torch.Generator().manual_seed(0)
    xtr, ytr = mnist_first(True, N_EXP * N_TRAIN)
    xte, yte = mnist_first(False, N_TEST)
    tr, te = [], []
    for k in range(N_EXP):
        perm = torch.randperm(784, generator=g)
        sl = slice(k * N_TRAIN, (k + 1) * N_TRAIN)
        tr.append(ExperienceTensors(xtr[sl].flatten(1)[:, perm].view(-1, 1, 28, 28), ytr[sl], 0))
        te.append(ExperienceTensors(xte.flatten(1)[:, perm].view(-1, 1, 28, 28), yte, 0))
    return tensor_benchmark(tr, te)


def _evaluator():
    return EvaluationPlugin(
        accuracy_metrics(experience=True, stream=True), loss_metrics(epoch=True), loggers=[]
    )


def _strategy(cls, **kwargs):
    """``cls`` on a fresh MLP 784-50-50-10 (seed 0), Adam (lr 1e-3), minibatches of 16."""
    torch.manual_seed(0)
    model = MLP(784, (50, 50), 10)
    return cls(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        train_mb_size=16,
        evaluator=_evaluator(),
        **kwargs,
    )


def _run(strategy, bm) -> dict:
    for exp in bm.train_stream:
        strategy.train(exp)
    return strategy.eval(bm.test_stream)


def _stream_acc(results: dict) -> float:
    return next(v for k, v in results.items() if k.startswith("Top1_Acc_Stream/eval_phase/test"))


def _last_acc(results: dict) -> float:
    key = f"Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp{N_EXP - 1:03d}"
    return results[key]


STRATEGIES = {
    "CBP": (CBP, {"rho": 1e-2, "m": 20}),
    "ReDo": (ReDo, {"F": 20}),
    "CReLU": (CReLU, {}),
    "L2Init": (L2Init, {}),
    "L2InitEWC": (L2InitEWC, {"ewc_lambda": 10.0}),
    "ShrinkPerturb": (ShrinkPerturb, {}),
    "MAML": (MAML, {"inner_lr": 0.05}),
}


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_strategy_learns_permuted_mnist(name, permuted_mnist):
    cls, kwargs = STRATEGIES[name]
    strategy = _strategy(cls, **kwargs)
    results = _run(strategy, permuted_mnist)
    assert _last_acc(results) > 0.5  # chance is 0.1
    assert _stream_acc(results) > 0.25
    if name == "CBP":
        assert sum(strategy.cbp.replaced.values()) > 0
    if name == "ReDo":
        assert strategy.redo.last_scores  # ReDo looked at the units


@pytest.mark.parametrize(
    "cls, make_plugin, kwargs, check",
    [
        (
            Replay,
            lambda: ReDoPlugin(tau=0.1, F=10),
            {"mem_size": 100},
            lambda redo: redo.last_scores and set(redo.recycled) == {"1", "3"},
        ),
        (
            EWC,
            lambda: CBPPlugin(rho=1e-2, m=20),
            {"ewc_lambda": 10.0},
            lambda cbp: sum(cbp.replaced.values()) > 0,
        ),
    ],
    ids=["Replay+ReDo", "EWC+CBP"],
)
def test_plugin_inside_an_avalanche_strategy(cls, make_plugin, kwargs, check, permuted_mnist):
    plugin = make_plugin()
    strategy = _strategy(
        cls,
        criterion=torch.nn.CrossEntropyLoss(),
        eval_mb_size=256,
        plugins=[plugin],
        **kwargs,
    )
    results = _run(strategy, permuted_mnist)
    assert _last_acc(results) > 0.5
    assert check(plugin)
