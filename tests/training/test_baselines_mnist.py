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
def permuted_mnist(data_root):
    """3 experiences x 500 training (200 test) images of Permuted MNIST, built in the test."""
    from torchvision.datasets import MNIST

    train = MNIST(root=str(data_root), train=True, download=False)
    test = MNIST(root=str(data_root), train=False, download=False)

    def prep(ds, n):
        x = (ds.data[:n].float() / 255 - 0.1307) / 0.3081
        return x.view(n, 1, 28, 28), ds.targets[:n]

    g = torch.Generator().manual_seed(0)
    xtr, ytr = prep(train, N_EXP * N_TRAIN)
    xte, yte = prep(test, N_TEST)
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
    torch.manual_seed(0)
    model = MLP(784, (50, 50), 10)
    strategy = cls(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        train_mb_size=16,
        evaluator=_evaluator(),
        **kwargs,
    )
    results = _run(strategy, permuted_mnist)
    assert _last_acc(results) > 0.5  # chance is 0.1
    assert _stream_acc(results) > 0.25
    if name == "CBP":
        assert sum(strategy.cbp.replaced.values()) > 0
    if name == "ReDo":
        assert strategy.redo.last_scores  # ReDo looked at the units


def test_plugins_inside_avalanche_strategies(permuted_mnist):
    torch.manual_seed(0)
    model = MLP(784, (50, 50), 10)
    redo = ReDoPlugin(tau=0.1, F=10)
    replay = Replay(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        criterion=torch.nn.CrossEntropyLoss(),
        mem_size=100,
        train_mb_size=16,
        eval_mb_size=256,
        plugins=[redo],
        evaluator=_evaluator(),
    )
    results = _run(replay, permuted_mnist)
    assert _last_acc(results) > 0.5
    assert redo.last_scores and set(redo.recycled) == {"1", "3"}

    torch.manual_seed(0)
    model = MLP(784, (50, 50), 10)
    cbp = CBPPlugin(rho=1e-2, m=20)
    ewc = EWC(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        criterion=torch.nn.CrossEntropyLoss(),
        ewc_lambda=10.0,
        train_mb_size=16,
        eval_mb_size=256,
        plugins=[cbp],
        evaluator=_evaluator(),
    )
    results = _run(ewc, permuted_mnist)
    assert _last_acc(results) > 0.5
    assert sum(cbp.replaced.values()) > 0
