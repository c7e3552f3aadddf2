"""NGM-SGD: the gain recurrence, its timing, the strategy and its baselines."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive
from torch import nn

from avalanche_neumod.benchmarks.tensor_data import ExperienceTensors, tensor_benchmark
from avalanche_neumod.models import MLP, SlimResNet18
from avalanche_neumod.models.ngm_mlp import ngm_mlp
from avalanche_neumod.training.ngm import NGMSGD, baseline_optimizer, ngm_baseline
from avalanche_neumod.training.ngm.gains import gain_layers
from avalanche_neumod.training.ngm.modulation import (
    GainModulationPlugin,
    softmax_entropy,
)


def _logits_with_probs(probs: list[float], batch: int = 4) -> torch.Tensor:
    return torch.tensor(probs, dtype=torch.double).log().expand(batch, -1).clone()


def _step(plugin, strategy, logits):
    """One training iteration as the template calls it: update gains, forward, step, H."""
    plugin.before_forward(strategy)
    strategy.mb_output = logits
    plugin.after_update(strategy)


def _started(n_out: int, **kwargs):
    """A float64 one-layer model (3 -> ``n_out``), a stand-in strategy holding it, and a
    ``GainModulationPlugin(**kwargs)`` started on it."""
    model = nn.Sequential(nn.Linear(3, n_out)).double()
    strategy = SimpleNamespace(model=model, mb_output=None)
    plugin = GainModulationPlugin(**kwargs)
    plugin.before_training(strategy)
    return model, strategy, plugin


def test_recurrence_on_known_entropy_sequence():
    gamma, eta, g0 = 0.5, 0.2, 1.0
    model, strategy, plugin = _started(3, eta=eta, gamma=gamma, g0=g0)
    seq = [[1 / 3, 1 / 3, 1 / 3], [0.5, 0.25, 0.25], [1.0, 0.0, 0.0]]
    for p in seq:
        _step(plugin, strategy, _logits_with_probs(p))
    plugin.before_forward(strategy)
    h = [math.log(3), 1.5 * math.log(2), 0.0]  # entropies of the three iterations (nats)
    assert plugin.entropy_history == pytest.approx(h, abs=1e-12)
    # H starts at 0: g1 = 0.5*1 + 0.5*1 + 0 = 1
    g1 = 1.0
    g2 = 0.5 * g1 + 0.5 + 0.2 * math.log(3)
    g3 = 0.5 * g2 + 0.5 + 0.2 * 1.5 * math.log(2)
    g4 = 0.5 * g3 + 0.5 + 0.0
    assert plugin.gain_history["0"] == pytest.approx([g1, g2, g3, g4], abs=1e-12)
    assert torch.allclose(model[0].gain, torch.full((3,), g4, dtype=torch.double), atol=1e-12)
    assert g2 == pytest.approx(1.2197224577336219, abs=1e-12)


def test_fixed_point():
    gamma, eta, g0 = 0.9, 0.4, 1.0
    model, strategy, plugin = _started(5, eta=eta, gamma=gamma, g0=g0)
    logits = _logits_with_probs([0.7, 0.1, 0.1, 0.05, 0.05])
    h = softmax_entropy(logits).item()
    for _ in range(300):
        _step(plugin, strategy, logits)
    plugin.before_forward(strategy)
    fixed = g0 + eta * h / (1 - gamma)
    assert torch.allclose(model[0].gain, torch.full((5,), fixed, dtype=torch.double), atol=1e-12)
    # the fixed point is one: another iteration at the same entropy leaves g unchanged
    _step(plugin, strategy, logits)
    plugin.before_forward(strategy)
    assert torch.allclose(model[0].gain, torch.full((5,), fixed, dtype=torch.double), atol=1e-12)
    assert fixed > g0


def _stream(n_exp=2, n=64, shape=(20,), classes=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    parts = []
    for _t in range(n_exp):
        x = torch.randn(n, *shape, generator=gen)
        y = torch.randint(0, classes, (n,), generator=gen)
        parts.append(ExperienceTensors(x, y, torch.zeros(n, dtype=torch.long)))
    return tensor_benchmark(train=parts, test=parts)


class _Logits(SupervisedPlugin):
    """Records every training forward's logits and every eval forward's presence."""

    def __init__(self):
        super().__init__()
        self.train_logits: list[torch.Tensor] = []
        self.eval_forwards = 0

        self.gains: list[dict[str, torch.Tensor]] = []

    def after_forward(self, strategy, **kw):
        self.train_logits.append(strategy.mb_output.detach().clone())
        self.gains.append({n: m.gain.clone() for n, m in gain_layers(strategy.model).items()})

    def after_eval_forward(self, strategy, **kw):
        self.eval_forwards += 1


def test_entropy_from_the_right_iteration_and_frozen_in_eval():
    bench = _stream()
    rec = _Logits()
    strategy = NGMSGD(
        model=MLP(20, (16,), 4),
        eta=0.5,
        gamma=0.8,
        lr=0.1,
        train_mb_size=16,
        train_epochs=3,
        eval_mb_size=32,
        plugins=[rec],
        evaluator=None,
        eval_every=1,  # evaluation between epochs, inside training
    )
    plugin = strategy.gain_plugin
    for exp in bench.train_stream:
        strategy.train(exp, eval_streams=[bench.test_stream])
    assert rec.eval_forwards > 0
    n = len(rec.train_logits)
    assert n == 2 * 3 * 4 == len(plugin.entropy_history)
    # H_t is the entropy of iteration t's own logits, not of an evaluation's
    for t in range(n):
        assert plugin.entropy_history[t] == pytest.approx(
            softmax_entropy(rec.train_logits[t]).item(), abs=1e-6
        )
    # the gains used in forward t+1 are driven by H_t (H_-1 = 0), in the buffers and history
    ref = [1.0]
    for t in range(n - 1):
        ref.append(0.8 * ref[t] + 0.2 * 1.0 + 0.5 * plugin.entropy_history[t])
    hist = plugin.gain_history
    assert set(hist) == {"1", "3"}
    for name, gs in hist.items():
        assert gs == pytest.approx(ref, abs=1e-5)
        used = [g[name] for g in rec.gains]
        assert all(torch.allclose(u, torch.full_like(u, r), atol=1e-5) for u, r in zip(used, ref))
    assert plugin.experience_starts == [0, 12]
    # frozen in evaluation: gains, H and the history do not move
    before = {k: v.clone() for k, v in plugin.gains().items()}
    h, length = plugin.entropy, len(plugin.entropy_history)
    strategy.eval(bench.test_stream)
    assert all(torch.equal(before[k], v) for k, v in plugin.gains().items())
    assert plugin.entropy == h and len(plugin.entropy_history) == length
    assert max(max(gs) for gs in hist.values()) > 1.0  # the gains did move in training


def test_works_on_mlp_all_layers():
    bench = _stream()
    model = MLP(20, (16, 8), 4)
    w0 = model[1].weight.detach().clone()
    strategy = NGMSGD(model=model, eta=0.4, train_mb_size=16, evaluator=None)
    strategy.train(bench.train_stream[0])
    layers = gain_layers(model)
    assert list(layers) == ["1", "3", "5"]
    for m in layers.values():
        assert torch.all(m.gain > 1.0)  # H > 0 drove them above g0
        assert torch.allclose(m.gain, m.gain[0].expand_as(m.gain))  # one scalar drive
    assert not torch.equal(model[1].weight, w0)
    assert [g["momentum"] for g in strategy.optimizer.param_groups] == [0.0]


def test_works_on_slim_resnet_head_only():
    x = torch.randn(16, 3, 8, 8)
    y = torch.randint(0, 5, (16,))
    exp = ExperienceTensors(x, y, torch.zeros(16, dtype=torch.long))
    bench = tensor_benchmark(train=[exp], test=[exp])
    model = SlimResNet18(num_classes=5, nf=4)
    strategy = NGMSGD(model=model, eta=0.2, layers="head", train_mb_size=8, evaluator=None)
    strategy.train(bench.train_stream[0])
    assert list(gain_layers(model)) == ["linear"]
    assert torch.all(model.linear.gain > 1.0)
    assert len(strategy.gain_plugin.entropy_history) == 2
    # authors' ResNet optimiser: plain SGD on the head, momentum 0.9 on the backbone
    groups = strategy.optimizer.param_groups
    assert [g["momentum"] for g in groups] == [0.0, 0.9]
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.linear.parameters()}


class _IterationStartProbe(SupervisedPlugin):
    """What a tracker evaluating at the start of an iteration sees."""

    def __init__(self):
        super().__init__()
        self.seen: list[float] = []

    def before_training_iteration(self, strategy, **kw):
        self.seen.append(gain_layers(strategy.model)["3"].gain[0].item())


def test_plugin_in_stock_avalanche_strategy_on_sequential():
    bench = _stream(shape=(1, 6, 6))
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 4))
    plugin = GainModulationPlugin(eta=0.3, layers="all")
    probe = _IterationStartProbe()
    strategy = Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
        train_mb_size=16,
        evaluator=None,
        plugins=[plugin, probe],  # the probe runs after the plugin at each event
    )
    strategy.train(bench.train_stream[0])
    # at the start of iteration t the gains are still those of forward t-1 (g0 before t=0)
    assert probe.seen == pytest.approx([1.0] + plugin.gain_history["3"][:-1], abs=1e-6)
    assert list(plugin.gains()) == ["0", "3"] and plugin.gains()["0"].shape == (3,)
    assert len(plugin.entropy_history) == 4 and len(plugin.gain_history["0"]) == 4
    assert torch.all(plugin.gains()["3"] > 1.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"eta": 0.1, "gamma": -0.1},
        {"eta": 0.1, "gamma": 1.0},
        {"eta": -0.1},
        {"eta": float("nan")},
        {"eta": 0.1, "g0": 0.0},
        {"eta": 0.1, "layers": "hidden"},
        {"eta": 0.1, "layers": []},
    ],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        GainModulationPlugin(**kwargs)
    with pytest.raises(ValueError):
        NGMSGD(model=MLP(4, (3,), 2), **kwargs)


def test_baselines_same_network_gains_fixed():
    model = ngm_mlp(20, (8,), 4)
    opt = baseline_optimizer(model, "msgd")
    assert opt.param_groups[0]["momentum"] == 0.9
    assert len(opt.param_groups[0]["params"]) == 2  # weights only: biases are frozen
    assert isinstance(baseline_optimizer(model, "adam"), torch.optim.Adam)
    with pytest.raises(ValueError, match="sgd.*msgd.*adam"):
        baseline_optimizer(model, "rmsprop")
    bench = _stream()
    strategy = ngm_baseline("adam", model=model, train_mb_size=16, evaluator=None)
    strategy.train(bench.train_stream[0])
    assert gain_layers(model) == {}  # no gains: the plain layer is (x @ W.T) * 1 + b
    assert all(torch.all(m.bias == 0) for m in (model[1], model[3]))


def test_same_seed_same_run():
    def run():
        torch.manual_seed(3)
        bench = _stream()
        strategy = NGMSGD(model=ngm_mlp(20, (8,), 4), eta=0.4, train_mb_size=16, evaluator=None)
        for exp in bench.train_stream:
            strategy.train(exp)
        return strategy.gain_plugin.history(), [p.detach() for p in strategy.model.parameters()]

    (h1, p1), (h2, p2) = run(), run()
    assert h1 == h2 and all(torch.equal(a, b) for a, b in zip(p1, p2))
