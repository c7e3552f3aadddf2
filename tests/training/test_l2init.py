"""L2Init: the penalty, its anchor and its gradient."""

from __future__ import annotations

import pytest
import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from avalanche_neumod.benchmarks import ExperienceTensors, tensor_benchmark
from avalanche_neumod.models import MLP
from avalanche_neumod.training.plugins.l2init import L2InitPlugin
from avalanche_neumod.training.strategies import L2Init


def _bench():
    g = torch.Generator().manual_seed(0)
    data = [
        ExperienceTensors(
            torch.randn(30, 5, generator=g), torch.randint(0, 3, (30,), generator=g), 0
        )
        for _ in range(2)
    ]
    return tensor_benchmark(data, data)


class _LossSpy(SupervisedPlugin):
    """Records the strategy's loss and its plain criterion at after_backward."""

    def __init__(self):
        super().__init__()
        self.records = []
        self.grad_ok = []

    def after_backward(self, strategy, **kwargs):
        # gradient check: .grad = autograd of criterion + lam ||theta - theta_0||^2
        model = strategy.model
        params = list(model.parameters())
        total = strategy._criterion(model(strategy.mb_x), strategy.mb_y)
        total = total + strategy.l2init.penalty(model)
        want = torch.autograd.grad(total, params)
        self.grad_ok.append(all(torch.allclose(p.grad, w, atol=1e-6) for p, w in zip(params, want)))
        with torch.no_grad():
            plain = strategy._criterion(strategy.model(strategy.mb_x), strategy.mb_y)
        self.records.append((float(strategy.loss.detach()), float(plain)))


def test_penalty_with_theta0_from_the_start_of_training():
    model = MLP(5, (4,), 3)
    theta0 = [p.detach().clone() for p in model.parameters()]
    spy = _LossSpy()
    lam = 0.5
    strategy = L2Init(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
        lam=lam,
        train_mb_size=10,
        plugins=[spy],
        evaluator=None,
    )
    for exp in _bench().train_stream:
        strategy.train(exp)
    # the anchor is the parameters before the first experience, not before the second
    for a, b in zip(strategy.l2init.theta0, theta0):
        assert torch.equal(a, b)
    expected = lam * sum(((p - p0) ** 2).sum() for p, p0 in zip(model.parameters(), theta0))
    assert float(strategy.l2init.penalty(model).detach()) == pytest.approx(
        float(expected), rel=1e-5
    )
    assert float(expected) > 0
    # the training loss = criterion + penalty at each iteration (the first: penalty 0)
    assert spy.records[0][0] == pytest.approx(spy.records[0][1], rel=1e-6)
    assert all(total >= plain - 1e-7 for total, plain in spy.records)
    assert any(total > plain + 1e-6 for total, plain in spy.records)
    assert len(spy.grad_ok) == len(spy.records) == 6 and all(spy.grad_ok)


def _with_params(model: nn.Module, names, ps) -> nn.Module:
    """A stand-in exposing ``named_parameters`` -> the given tensors."""

    class _View(nn.Module):
        def named_parameters(self, *a, **k):
            return iter(zip(names, ps))

    return _View()


def test_gradient_of_the_penalty():
    torch.manual_seed(1)
    model = MLP(5, (4,), 3).double()
    plugin = L2InitPlugin(lam=0.3)
    plugin.set_anchor(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    model.zero_grad()
    plugin.penalty(model).backward()
    for p, p0 in zip(model.parameters(), plugin.theta0):
        assert torch.allclose(p.grad, 2 * 0.3 * (p - p0))  # d/dtheta lam ||theta - theta0||^2
    params = tuple(p.detach().clone().requires_grad_(True) for p in model.parameters())
    names = [n for n, _ in model.named_parameters()]

    def pen(*ps):  # the plugin's penalty as a function of the parameters
        return plugin.penalty(_with_params(model, names, ps))

    assert torch.autograd.gradcheck(pen, params)
    # at theta = theta0 the penalty and its gradient are 0
    plugin.set_anchor(model)
    model.zero_grad()
    loss = plugin.penalty(model)
    loss.backward()
    assert float(loss) == 0
    assert all(torch.all(p.grad == 0) for p in model.parameters())


def test_negative_lambda_raises():
    with pytest.raises(ValueError):
        L2InitPlugin(lam=-1e-3)
