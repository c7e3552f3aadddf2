"""MAML: the meta-gradient against a hand-built computation; backends agree."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn
from torch.func import functional_call

from avalanche_neumod.training.maml import MAML


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def _data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (8,), generator=g)
    return x, y


def _strategy(model, **kw) -> MAML:
    return MAML(
        model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), evaluator=None, **kw
    )


def _meta_grad(strategy: MAML, x, y) -> torch.Tensor:
    strategy.model.zero_grad()
    t = torch.zeros(len(y), dtype=torch.long)
    strategy.mbatch = [x, y, t]
    support, query = strategy.split()
    out = strategy.adapted_forward(support, query[0], query[2])
    nn.functional.cross_entropy(out, query[1]).backward()
    return torch.cat([p.grad.flatten() for p in strategy.model.parameters()])


def _hand_built(model, x, y, alpha, steps, first_order):
    """theta_{s+1} = theta_s - alpha g_s(theta_s); meta-grad = prod_s (I - alpha H_s) grad L_q."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [p.numel() for _, p in model.named_parameters()]
    theta = torch.cat([p.detach().flatten() for p in model.parameters()])

    def loss(flat, xx, yy):
        parts = dict(zip(names, (t.view(s) for t, s in zip(flat.split(sizes), shapes))))
        return nn.functional.cross_entropy(functional_call(model, parts, (xx,)), yy)

    xs, ys, xq, yq = x[:4], y[:4], x[4:], y[4:]
    thetas = [theta]
    for _ in range(steps):
        g = torch.autograd.functional.jacobian(lambda f: loss(f, xs, ys), thetas[-1])
        thetas.append(thetas[-1] - alpha * g)
    grad = torch.autograd.functional.jacobian(lambda f: loss(f, xq, yq), thetas[-1])
    if first_order:
        return grad
    eye = torch.eye(len(theta), dtype=theta.dtype)
    for th in reversed(thetas[:-1]):  # d theta_{s+1} / d theta_s = I - alpha H(theta_s)
        h = torch.autograd.functional.hessian(lambda f: loss(f, xs, ys), th)
        grad = (eye - alpha * h) @ grad
    return grad


@pytest.mark.parametrize("steps", [1, 2])
@pytest.mark.parametrize("first_order", [False, True])
def test_meta_gradient_matches_hand_built(steps, first_order):
    model = _model()
    x, y = _data()
    s = _strategy(model, inner_lr=0.3, inner_steps=steps, first_order=first_order)
    got = _meta_grad(s, x, y)
    want = _hand_built(model, x, y, 0.3, steps, first_order)
    assert torch.allclose(got, want, atol=1e-10)
    if not first_order:  # the second-order terms matter here
        fo = _hand_built(model, x, y, 0.3, steps, True)
        assert not torch.allclose(got, fo, atol=1e-6)


def test_higher_backend_without_higher_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "higher", None)  # ``import higher`` now fails
    with pytest.raises(ImportError, match=r"pip install higher.*torch\.func"):
        _strategy(_model(), backend="higher")


@pytest.mark.parametrize("first_order", [False, True])
def test_higher_backend_matches(first_order):
    pytest.importorskip("higher")  # the optional extra ``maml``; its absence is tested above
    x, y = _data()
    g1 = _meta_grad(_strategy(_model(), inner_lr=0.3, inner_steps=2, first_order=first_order), x, y)
    g2 = _meta_grad(
        _strategy(_model(), inner_lr=0.3, inner_steps=2, first_order=first_order, backend="higher"),
        x,
        y,
    )
    assert torch.allclose(g1, g2, atol=1e-10)


def test_split_and_meta_update():
    model = _model()
    x, y = _data()
    s = _strategy(model, inner_lr=0.3, support_fraction=0.25)
    s.mbatch = [x, y, torch.zeros(8, dtype=torch.long)]
    (xs, _, _), (xq, _, _) = s.split()
    assert torch.equal(xs, x[:2]) and torch.equal(xq, x[2:])
    s.mbatch = [x[:1], y[:1], torch.zeros(1, dtype=torch.long)]
    (xs, _, _), (xq, _, _) = s.split()
    assert torch.equal(xs, x[:1]) and torch.equal(xq, x[:1])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"inner_lr": -0.1},
        {"inner_steps": 0},
        {"inner_steps": 1.5},
        {"backend": "jax"},
        {"support_fraction": 1.0},
    ],
)
def test_bad_hyperparameters_raise(kwargs):
    model = _model()
    with pytest.raises(ValueError):
        _strategy(model, **kwargs)
