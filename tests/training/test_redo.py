"""ReDo: scores, recycling, the output layer, and the recycling periods."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from avalanche_neumod.benchmarks import ExperienceTensors, tensor_benchmark
from avalanche_neumod.models import MLP, ConvNet
from avalanche_neumod.models.units import dormant_fraction, redo_scores
from avalanche_neumod.training.plugins import ReDoPlugin
from avalanche_neumod.training.strategies import ReDo


def test_scores_on_known_activity():
    h = torch.tensor([[1.0, 0.0, -3.0, 0.5], [3.0, 0.0, 1.0, 0.5]])  # E|h| = 2, 0, 2, 0.5
    s = redo_scores(h)
    assert torch.allclose(s, torch.tensor([2, 0, 2, 0.5]) / 1.125)
    assert dormant_fraction(h, tau=0.1) == 0.25
    # recorder layout (batch, width_factor, n, positions): mean over copies and positions
    h4 = torch.tensor([[[[1.0, 3.0], [0.0, 0.0]], [[1.0, 1.0], [0.0, 4.0]]]])  # (1, 2, 2, 2)
    assert torch.allclose(redo_scores(h4), torch.tensor([1.5, 1.0]) / 1.25)
    assert torch.all(redo_scores(torch.zeros(3, 5)) == 0)


def _forced_dormant_mlp():
    torch.manual_seed(3)
    model = MLP(6, (8,), 4)  # one hidden layer "1"; "3" is the output layer
    with torch.no_grad():
        model[1].weight[2] = 0.0
        model[1].bias[2] = -1.0  # ReLU(-1) = 0 for every input: unit 2 of layer "1" is dead
        model[3].weight[1] = 0.0
        model[3].bias[1] = 0.0  # output unit 1 is silent too, but is never recycled
    return model


def test_forced_dormant_unit_is_detected_and_recycled():
    model = _forced_dormant_mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randn(16, 6)
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), torch.randint(0, 4, (16,))).backward()
    opt.step()
    plugin = ReDoPlugin(tau=0.0)
    plugin.attach(model)
    assert [hu.name for hu in plugin.units] == ["1"]
    with torch.no_grad():
        model(x)
        h1 = torch.relu(model[1](x))
    expected = h1.abs().mean(0) / h1.abs().mean()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    bias_state = opt.state[model[3].bias]["exp_avg"].clone()
    assert bias_state.abs().sum() > 0
    recycled = plugin.recycle(plugin.recorder.activity, opt)
    assert torch.allclose(plugin.last_scores["1"], expected)
    assert plugin.last_scores["1"][2] == 0 and torch.all(plugin.last_scores["1"][[0, 1, 3]] > 0)
    assert recycled["1"].tolist() == [2]
    assert plugin.last_dormant_fraction["1"] == pytest.approx(1 / 8)
    # incoming weights fresh from the default init, bias 0, outgoing 0, others untouched
    b = 1 / math.sqrt(6)
    assert model[1].weight[2].abs().sum() > 0 and model[1].weight[2].abs().max() <= b
    assert model[1].bias[2] == 0
    assert torch.all(model[3].weight[:, 2] == 0)
    keep = [i for i in range(8) if i != 2]
    assert torch.equal(model[1].weight[keep], before["1.weight"][keep])
    assert torch.equal(model[3].weight[:, keep], before["3.weight"][:, keep])
    # Adam moments of the recycled rows / columns reset
    assert torch.all(opt.state[model[1].weight]["exp_avg"][2] == 0)
    assert torch.all(opt.state[model[1].weight]["exp_avg_sq"][2] == 0)
    assert torch.all(opt.state[model[3].weight]["exp_avg"][:, 2] == 0)
    assert opt.state[model[1].weight]["exp_avg"][keep].abs().sum() > 0
    # the output layer is never recycled, even with a silent output unit: its rows keep
    # their weights (bar the recycled unit's column) and bias
    assert torch.equal(model[3].bias, before["3.bias"])
    assert torch.equal(opt.state[model[3].bias]["exp_avg"], bias_state)


def test_crelu_and_conv_units():
    torch.manual_seed(0)
    model = MLP(6, (5,), 3, activation="crelu")
    with torch.no_grad():
        model[1].weight[4] = 0.0
        model[1].bias[4] = 0.0  # CReLU(0) = (0, 0): dormant
    plugin = ReDoPlugin(tau=0.0)
    plugin.attach(model)
    with torch.no_grad():
        model(torch.randn(10, 6))
    out = plugin.recycle(plugin.recorder.activity)
    assert out["1"].tolist() == [4]
    assert torch.all(model[3].weight[:, [4, 9]] == 0)  # both CReLU copies

    net = ConvNet(in_channels=1, num_classes=3, input_size=20, channels=4, hidden=6)
    with torch.no_grad():
        net[0].weight[1] = 0.0
        net[0].bias[1] = -1.0
    plugin = ReDoPlugin(tau=0.0)
    plugin.attach(net)
    with torch.no_grad():
        net(torch.randn(4, 1, 20, 20))
    out = plugin.recycle(plugin.recorder.activity)
    assert out["0"].tolist() == [1]
    assert torch.all(net[3].weight[:, 1] == 0) and net[0].weight[1].abs().sum() > 0


def _bench(n_exp=3, n=40):
    g = torch.Generator().manual_seed(0)
    data = [
        ExperienceTensors(torch.randn(n, 6, generator=g), torch.randint(0, 4, (n,), generator=g), 0)
        for _ in range(n_exp)
    ]
    return tensor_benchmark(data, data)


@pytest.mark.parametrize(
    "every,F,expected",
    [("iterations", 5, [5, 10]), ("experience", 1000, [4, 8, 12]), ("both", 5, [4, 5, 8, 10, 12])],
)
def test_recycling_periods(every, F, expected, monkeypatch):
    model = _forced_dormant_mlp()
    strategy = ReDo(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
        tau=0.0,
        F=F,
        every=every,
        train_mb_size=10,
        evaluator=None,
    )
    calls = []
    original = strategy.redo.recycle

    def spy(activity, optimizer=None):
        calls.append(strategy.redo.iterations)
        return original(activity, optimizer)

    monkeypatch.setattr(strategy.redo, "recycle", spy)
    for exp in _bench().train_stream:  # 4 iterations per experience
        strategy.train(exp)
    assert calls == expected
    assert strategy.redo.recycled["1"] >= 1  # the dead unit was recycled


@pytest.mark.parametrize("kwargs", [{"tau": -0.1}, {"F": 0}, {"F": 2.5}, {"every": "epoch"}])
def test_bad_hyperparameters_raise(kwargs):
    with pytest.raises(ValueError):
        ReDoPlugin(**kwargs)
