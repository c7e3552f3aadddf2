"""Shrink & Perturb: the update equation and the fresh-parameter distribution."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from avalanche_neumod.benchmarks import ExperienceTensors, tensor_benchmark
from avalanche_neumod.models import MLP
from avalanche_neumod.training.plugins.shrink_perturb import ShrinkPerturbPlugin
from avalanche_neumod.training.strategies import ShrinkPerturb


def test_update_equation_on_known_tensors():
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 4.0]]))
        model.bias.copy_(torch.tensor([3.0, -1.0]))

    def init(copy: nn.Module) -> None:  # theta_fresh known: weight 0.25, bias -2
        with torch.no_grad():
            copy.weight.fill_(0.25)
            copy.bias.fill_(-2.0)

    plugin = ShrinkPerturbPlugin(p=0.1, sigma=0.5, init=init)
    plugin.attach(model)
    plugin.shrink_perturb()
    # theta <- (1 - p) theta + sigma theta_fresh
    assert torch.allclose(model.weight, torch.tensor([[0.9 + 0.125, -1.8 + 0.125], [0.575, 3.725]]))
    assert torch.allclose(model.bias, torch.tensor([2.7 - 1.0, -0.9 - 1.0]))


def test_default_fresh_parameters_follow_pytorch_init():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(400, 300), nn.BatchNorm1d(300), nn.ReLU(), nn.Linear(300, 10))
    before = [p.detach().clone() for p in model.parameters()]
    p, sigma = 0.2, 1.0
    plugin = ShrinkPerturbPlugin(p=p, sigma=sigma)
    plugin.attach(model)
    plugin.shrink_perturb()
    fresh = [(q - (1 - p) * b) / sigma for q, b in zip(model.parameters(), before)]
    w1, b1, bn_w, bn_b, w2, b2 = fresh
    for t, fan_in in ((w1, 400), (b1, 400), (w2, 300)):
        bound = 1 / math.sqrt(fan_in)
        assert t.abs().max() <= bound + 1e-6
        assert t.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)  # U(-b, b)
    assert torch.allclose(bn_w, torch.ones(300), atol=1e-6)  # BatchNorm: weight 1, bias 0
    assert torch.allclose(bn_b, torch.zeros(300), atol=1e-6)
    # same seed, same draw
    torch.manual_seed(5)
    m1 = MLP(4, (3,), 2)
    m2 = MLP(4, (3,), 2)
    m2.load_state_dict(m1.state_dict())
    for m in (m1, m2):
        torch.manual_seed(7)
        pl = ShrinkPerturbPlugin()
        pl.attach(m)
        pl.shrink_perturb()
    assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters()))


def test_default_update_equation_with_torch_draws():
    """theta <- (1 - p) theta + sigma U(-b, b), the uniforms being torch's global RNG's,
    drawn per parameter in order: the same seed gives exactly these numbers."""
    torch.manual_seed(0)
    model = nn.Linear(6, 4)
    w, b = model.weight.detach().clone(), model.bias.detach().clone()
    p, sigma = 0.1, 0.5
    plugin = ShrinkPerturbPlugin(p=p, sigma=sigma)
    plugin.attach(model)
    torch.manual_seed(3)
    plugin.shrink_perturb()
    h = sigma / math.sqrt(6)
    torch.manual_seed(3)
    fresh_w, fresh_b = torch.empty(4, 6).uniform_(-h, h), torch.empty(4).uniform_(-h, h)
    assert torch.allclose(model.weight, (1 - p) * w + fresh_w, atol=1e-7)
    assert torch.allclose(model.bias, (1 - p) * b + fresh_b, atol=1e-7)


def _weight_deltas(model: nn.Linear, sigma: float, steps: int, seed=None) -> list:
    """The change of ``model.weight`` at each of ``steps`` perturbations (p = 0) by a
    ``ShrinkPerturbPlugin`` attached to it; ``seed``: torch re-seeded before each step."""
    plugin = ShrinkPerturbPlugin(p=0.0, sigma=sigma)
    plugin.attach(model)
    deltas = []
    for _ in range(steps):
        before = model.weight.detach().clone()
        if seed is not None:
            torch.manual_seed(seed)
        plugin.shrink_perturb()
        deltas.append(model.weight.detach() - before)
    return deltas


def test_every_draw_follows_torch_manual_seed():
    """Re-seeding torch reproduces the next draw (not only the first after attaching)."""
    deltas = _weight_deltas(nn.Linear(10, 10), sigma=1.0, steps=2, seed=11)
    assert torch.allclose(deltas[0], deltas[1], atol=1e-6)


def _toy_bench(n_exp: int):
    """``n_exp`` experiences of 20 random rows (4 features, 2 classes); test = train."""
    g = torch.Generator().manual_seed(0)
    data = [
        ExperienceTensors(
            torch.randn(20, 4, generator=g), torch.randint(0, 2, (20,), generator=g), 0
        )
        for _ in range(n_exp)
    ]
    return tensor_benchmark(data, data)


def _strategy(**kwargs) -> ShrinkPerturb:
    """ShrinkPerturb on a fresh MLP 4-3-2, SGD (lr 0.1), minibatches of 10, no evaluator."""
    model = MLP(4, (3,), 2)
    return ShrinkPerturb(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        train_mb_size=10,
        evaluator=None,
        **kwargs,
    )


def test_training_runs_are_reproducible_with_the_seed():
    exp = _toy_bench(1).train_stream[0]
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        s = _strategy(sigma=0.1)
        s.train(exp)
        runs.append([q.detach().clone() for q in s.model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_every_iteration_and_every_experience(monkeypatch):
    bm = _toy_bench(3)
    for every, expected in (("iteration", 6), ("experience", 2)):
        s = _strategy(every=every)
        calls = []
        orig = s.shrink_perturb.shrink_perturb
        monkeypatch.setattr(
            s.shrink_perturb, "shrink_perturb", lambda c=calls, o=orig: (c.append(1), o())
        )
        for exp in bm.train_stream:
            s.train(exp)
        assert len(calls) == expected


@pytest.mark.parametrize("kwargs", [{"p": -0.1}, {"p": 1.5}, {"sigma": -1e-3}, {"every": "epoch"}])
def test_bad_hyperparameters_raise(kwargs):
    with pytest.raises(ValueError):
        ShrinkPerturbPlugin(**kwargs)


def test_each_step_draws_fresh_noise():
    """Every step adds a new draw (not a reused buffer), within U(-sigma b, sigma b)."""
    torch.manual_seed(0)
    deltas = _weight_deltas(nn.Linear(50, 40), sigma=0.5, steps=3)
    bound = 0.5 / math.sqrt(50)
    for d in deltas:
        assert d.abs().max() <= bound * (1 + 1e-5)
        assert d.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)
    assert not torch.allclose(deltas[0], deltas[1]) and not torch.allclose(deltas[1], deltas[2])
    # successive draws are uncorrelated
    c = torch.corrcoef(torch.stack([deltas[0].flatten(), deltas[1].flatten()]))[0, 1]
    assert abs(c.item()) < 0.1


def test_a_deep_copy_keeps_drawing_fresh_noise():
    """A strategy fork (model and plugin deep-copied together, as the transfer probes do)
    perturbs its own model with new noise at every step, not a replay of the original's."""
    import copy

    torch.manual_seed(0)
    model = nn.Linear(30, 20)
    plugin = ShrinkPerturbPlugin(p=0.0, sigma=0.5)
    plugin.attach(model)
    plugin.shrink_perturb()
    model_copy, plugin_copy = copy.deepcopy((model, plugin))

    def step(m: nn.Linear, pl: ShrinkPerturbPlugin) -> torch.Tensor:
        before = m.weight.detach().clone()
        pl.shrink_perturb()
        return m.weight.detach() - before

    original = model.weight.detach().clone()
    deltas = [step(model_copy, plugin_copy) for _ in range(2)]
    assert not torch.allclose(deltas[0], deltas[1])
    assert deltas[0].abs().max() > 0
    assert torch.equal(model.weight, original)  # the original model is untouched
    # the original's next step differs from the fork's first: no replayed noise stream
    assert not torch.allclose(step(model, plugin), deltas[0])
