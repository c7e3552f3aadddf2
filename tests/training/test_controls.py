"""NeuMoSync's diagnosis controls: Naive with a learned output temperature, and Naive with
its learning rate times NeuMoSync's step factor at the caps."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from toy_runs import toy_bench, toy_strategy

from avalanche_neumod.models import MLP
from avalanche_neumod.training import FastNaive
from avalanche_neumod.training.controls import (
    DEFAULT_LR_FACTOR,
    LearnedTemperature,
    NaiveScaledLR,
    NaiveTemperature,
    cap_step_factor,
)


def _train(strategy) -> None:
    for exp in toy_bench().train_stream:
        strategy.train(exp)


def test_cap_step_factor_is_the_squared_gradient_scale_at_the_caps():
    assert cap_step_factor() == pytest.approx((1.5 * 1.5) ** 2) == DEFAULT_LR_FACTOR
    assert cap_step_factor(1.0) == pytest.approx(16.0)
    assert cap_step_factor((0.5, 0.5, 0.0001, 0.1)) == pytest.approx(1.5**2 * 1.0001**2)


def test_cap_step_factor_matches_a_neumosync_layer_at_its_caps():
    """One SGD step on theta of ``z' = g s theta h`` moves z' as one step of rate
    ``(g s)^2 eta`` on a plain layer holding ``g s theta`` (the derivation's claim)."""
    torch.manual_seed(0)
    g, s, eta = 1.5, 1.5, 0.01
    h, y = torch.randn(4, 5), torch.randn(4, 3)
    theta = torch.randn(3, 5, requires_grad=True)
    F.mse_loss(h @ (g * s * theta).T, y).backward()
    z_mod = h @ (g * s * (theta - eta * theta.grad)).T
    w = (g * s * theta).detach().requires_grad_(True)
    F.mse_loss(h @ w.T, y).backward()
    z_plain = h @ (w - cap_step_factor((s - 1, 0.5, g - 1, 0.1)) * eta * w.grad).T
    assert torch.allclose(z_mod, z_plain, atol=1e-6)


def test_learned_temperature_divides_the_logits():
    torch.manual_seed(0)
    net = MLP(6, (8,), 3)
    wrapped = LearnedTemperature(net)
    x = torch.randn(5, 6)
    assert torch.equal(wrapped(x), net(x))  # T = 1 at the start
    with torch.no_grad():
        wrapped.log_temperature.fill_(math.log(4.0))
    assert torch.allclose(wrapped(x), net(x) / 4.0)
    assert wrapped.temperature == pytest.approx(4.0)


def test_naive_temperature_trains_the_temperature_with_the_same_optimizer():
    torch.manual_seed(0)
    strategy = toy_strategy(NaiveTemperature, train_mb_size=10, evaluator=None)
    opt = strategy.optimizer
    params = [p for group in opt.param_groups for p in group["params"]]
    assert any(p is strategy.model.log_temperature for p in params)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["lr"] == 0.1
    # one step of s = log T by hand: dL/ds = -mean_b sum_c (p - y)_c z_c / T
    x, y = torch.randn(10, 6), torch.randint(0, 3, (10,))
    net = strategy.model.model
    with torch.no_grad():
        z = net(x)
        p = torch.softmax(z, 1)
        grad = -((p - F.one_hot(y, 3)) * z).sum(1).mean()
    opt.zero_grad()
    F.cross_entropy(strategy.model(x), y).backward()
    assert strategy.model.log_temperature.grad == pytest.approx(float(grad), rel=1e-5)
    _train(strategy)
    assert strategy.model.temperature != 1.0
    assert strategy.mechanism_activity(strategy) == {"temperature": strategy.model.temperature}


def test_naive_scaled_lr_equals_naive_at_the_scaled_rate():
    torch.manual_seed(0)
    base = MLP(6, (8,), 3)
    a, b = MLP(6, (8,), 3), MLP(6, (8,), 3)
    a.load_state_dict(base.state_dict())
    b.load_state_dict(base.state_dict())
    scaled = NaiveScaledLR(
        model=a,
        optimizer=torch.optim.SGD(a.parameters(), lr=0.02, momentum=0.5),
        lr_factor=2.5,
        train_mb_size=10,
        evaluator=None,
    )
    assert scaled.optimizer.defaults["lr"] == pytest.approx(0.05)
    assert scaled.optimizer.defaults["momentum"] == 0.5
    plain = FastNaive(
        model=b,
        optimizer=torch.optim.SGD(b.parameters(), lr=0.02 * 2.5, momentum=0.5),
        train_mb_size=10,
        evaluator=None,
    )
    torch.manual_seed(1)
    _train(scaled)
    torch.manual_seed(1)
    _train(plain)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_naive_scaled_lr_defaults_and_rejects():
    model = MLP(6, (8,), 3)
    s = NaiveScaledLR(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.01))
    assert s.lr_factor == DEFAULT_LR_FACTOR
    assert s.optimizer.defaults["lr"] == pytest.approx(0.01 * DEFAULT_LR_FACTOR)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            NaiveScaledLR(
                model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.01), lr_factor=bad
            )
