"""CBP (DESIGN 5.1): the recurrence, the replacement rule and its side effects."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from avalanche_neumod.models import MLP, ConvNet
from avalanche_neumod.training.plugins.cbp import CBPPlugin


def _mlp() -> nn.Module:
    return MLP(6, (8, 8), 3)


def _hidden(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Hidden activations of an MLP computed by hand (independent of units.py)."""
    h1 = torch.relu(model[1](x.flatten(1)))
    h2 = torch.relu(model[3](h1))
    return [h1, h2]


def _expected_y(w_in, w_out, h, fhat, utility):
    out_mag = w_out.abs().mean(dim=0)
    if utility == "adaptable":
        return out_mag * (h - fhat).abs().mean(dim=0) / w_in.abs().mean(dim=1)
    return out_mag * h.abs().mean(dim=0)


@pytest.mark.parametrize("utility", ["adaptable", "contribution"])
def test_utilities_and_bias_corrections_follow_the_recurrence(utility):
    model = _mlp()
    plugin = CBPPlugin(rho=0.0, m=0, d=0.9, utility=utility)
    plugin.attach(model)
    d = 0.9
    f = [torch.zeros(8), torch.zeros(8)]
    u = [torch.zeros(8), torch.zeros(8)]
    for step in range(1, 6):
        x = torch.randn(5, 6)
        with torch.no_grad():
            model(x)
            hs = _hidden(model, x)
        plugin.update_units(plugin.recorder.activity)
        layers = [(model[1], model[3]), (model[3], model[5])]
        for j, ((w_in, w_out), h) in enumerate(zip(layers, hs)):
            f[j] = d * f[j] + (1 - d) * h.mean(dim=0)
            fhat = f[j] / (1 - d**step)
            y = _expected_y(w_in.weight, w_out.weight, h, fhat, utility)
            u[j] = d * u[j] + (1 - d) * y
            st = plugin.state[str(2 * j + 1)]
            assert torch.allclose(st.age, torch.full((8,), float(step)))
            assert torch.allclose(st.f.flatten(), f[j], atol=1e-6)
            assert torch.allclose(st.fhat(d).flatten(), fhat, atol=1e-6)
            assert torch.allclose(st.u, u[j], atol=1e-6)
            assert torch.allclose(st.uhat(d), u[j] / (1 - d**step), atol=1e-6)


def _consumer_mean_output(consumer: nn.Module, hu, fhat: torch.Tensor) -> torch.Tensor:
    """The consumer's output for its mean input (fhat per unit copy and position).

    Functional calls: calling the module would fire the plugin's recorder hooks.
    """
    cols = fhat.reshape(-1)  # (wf, n, S) in consumer column order
    if isinstance(consumer, nn.Linear):
        return nn.functional.linear(cols.unsqueeze(0), consumer.weight, consumer.bias)
    k = consumer.kernel_size
    img = cols.view(1, -1, 1, 1).expand(1, cols.numel(), k[0], k[1])
    return nn.functional.conv2d(img, consumer.weight, consumer.bias)


@pytest.mark.parametrize("optim", ["adam", "sgd"])
def test_replacement_of_the_lowest_utility_eligible_units(optim):
    torch.manual_seed(1)
    model = _mlp()
    m, d, rho = 3, 0.9, 0.25
    plugin = CBPPlugin(rho=rho, m=m, d=d)
    plugin.attach(model)
    if optim == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    for _ in range(m):  # ages 1..m: nobody is eligible yet
        x = torch.randn(7, 6)
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
        assert plugin.update_units(plugin.recorder.activity, opt) == {}
    # the step at which all units become eligible (age m + 1 > m)
    x = torch.randn(7, 6)
    opt.zero_grad()
    model(x).sum().backward()
    with torch.no_grad():
        hs = _hidden(model, x)  # the activity of this iteration's forward
    opt.step()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    states = {id(p): {k: v.clone() for k, v in opt.state[p].items()} for p in model.parameters()}
    expected, fhats = {}, {}
    for j, name in enumerate(["1", "3"]):
        st = plugin.state[name]
        w_in, w_out = model[2 * j + 1].weight, model[2 * j + 3].weight
        f = d * st.f.flatten() + (1 - d) * hs[j].mean(0)
        fhat = f / (1 - d ** (m + 1))
        u = d * st.u + (1 - d) * _expected_y(w_in, w_out, hs[j], fhat, "adaptable")
        uhat = u / (1 - d ** (m + 1))
        expected[name] = set(torch.argsort(uhat)[: int(rho * 8)].tolist())
        fhats[name] = fhat
    mean_out_before = {
        hu.name: _consumer_mean_output(hu.consumer, hu, fhats[hu.name]).detach()
        for hu in plugin.units
    }
    replaced = plugin.update_units(plugin.recorder.activity, opt)
    for j, hu in enumerate(plugin.units):
        idx = replaced[hu.name]
        assert len(idx) == int(rho * 8) == 2  # exactly rho * |eligible|
        assert set(idx.tolist()) == expected[hu.name]
        keep = torch.tensor([i for i in range(8) if i not in set(idx.tolist())])
        pw, cw = f"{hu.name}.weight", f"{hu.consumer_name}.weight"
        # incoming weights fresh (new values, in the default bound), bias 0
        b = 1 / math.sqrt(hu.producer.weight.shape[1])
        assert not torch.equal(hu.producer.weight[idx], before[pw][idx])
        assert hu.producer.weight[idx].abs().max() <= b
        expect_keep = before[pw][keep].clone()
        if j > 0:  # columns fed by the previous layer's replaced units are cut
            expect_keep[:, replaced[plugin.units[j - 1].name]] = 0
        assert torch.equal(hu.producer.weight[keep], expect_keep)
        assert torch.all(hu.producer.bias[idx] == 0)
        # consumer rows not themselves replaced (as units of the next hidden layer)
        nxt = replaced.get(hu.consumer_name, torch.tensor([], dtype=torch.long))
        rows = torch.tensor([r for r in range(hu.consumer.weight.shape[0]) if r not in nxt])
        # outgoing weights 0, the others untouched
        assert torch.all(hu.consumer.weight[rows][:, idx] == 0)
        assert torch.equal(hu.consumer.weight[rows][:, keep], before[cw][rows][:, keep])
        # the next layer's output for the mean input is unchanged
        after = _consumer_mean_output(hu.consumer, hu, fhats[hu.name])
        assert torch.allclose(after[:, rows], mean_out_before[hu.name][:, rows], atol=1e-6)
        # age, f, u reset
        st = plugin.state[hu.name]
        assert torch.all(st.age[idx] == 0) and torch.all(st.age[keep] == m + 1)
        assert torch.all(st.f[:, idx] == 0) and torch.all(st.u[idx] == 0)
        # optimizer state of those weights reset, the rest kept
        for p, dim, ix, kx in (
            (hu.producer.weight, 0, idx, keep),
            (hu.producer.bias, 0, idx, keep),
            (hu.consumer.weight, 1, idx, keep),
        ):
            sel = rows if p is hu.consumer.weight else slice(None)
            for key, value in opt.state[p].items():
                if not torch.is_tensor(value) or value.shape != p.shape:
                    assert torch.equal(torch.as_tensor(value), torch.as_tensor(states[id(p)][key]))
                    continue
                assert torch.all(value.index_select(dim, ix)[sel] == 0), key
                old = states[id(p)][key].index_select(dim, kx)[sel].clone()
                if p is hu.producer.weight and j > 0:  # cut columns: state reset too
                    old[:, replaced[plugin.units[j - 1].name]] = 0
                assert torch.equal(value.index_select(dim, kx)[sel], old)
                assert old.abs().sum() > 0


def test_next_bias_correction_false_keeps_the_bias():
    model = _mlp()
    plugin = CBPPlugin(rho=0.5, m=0, d=0.9, next_bias_correction=False)
    plugin.attach(model)
    bias = model[5].bias.detach().clone()  # the output layer: consumer of layer "3"
    with torch.no_grad():
        model(torch.randn(4, 6))
    replaced = plugin.update_units(plugin.recorder.activity)
    assert len(replaced["3"]) == 4
    assert torch.equal(model[5].bias, bias)


def test_units_younger_than_m_are_never_replaced():
    model = _mlp()
    m = 3
    plugin = CBPPlugin(rho=0.3, m=m, d=0.9)
    plugin.attach(model)
    total = 0
    for _ in range(30):
        with torch.no_grad():
            model(torch.randn(4, 6))
        ages = {k: st.age.clone() + 1 for k, st in plugin.state.items()}
        for name, idx in plugin.update_units(plugin.recorder.activity).items():
            assert torch.all(ages[name][idx] > m)
            total += len(idx)
    assert total > 0


def test_fractional_counts_accumulate():
    model = _mlp()
    plugin = CBPPlugin(rho=0.05, m=0, d=0.9)  # 0.4 units per step per layer
    plugin.attach(model)
    counts = []
    for _ in range(5):
        with torch.no_grad():
            model(torch.randn(4, 6))
        out = plugin.update_units(plugin.recorder.activity)
        counts.append(len(out.get("1", [])))
    # 0.4, 0.8, 1.2 -> 1 (0.2 left), 0.6, 1.0 -> 1; with m = 0 every unit stays eligible
    assert sum(counts) == 2 and counts[2] == 1


def test_bernoulli_counts_without_accumulation():
    model = _mlp()
    plugin = CBPPlugin(rho=0.05, m=0, d=0.9, accumulate=False)  # 0.4 expected per step
    plugin.attach(model)
    n = 0
    for _ in range(200):
        with torch.no_grad():
            model(torch.randn(4, 6))
        n += len(plugin.update_units(plugin.recorder.activity).get("1", []))
    assert 40 < n < 120


def test_conv_layers_channels_as_units():
    torch.manual_seed(2)
    model = ConvNet(in_channels=1, num_classes=3, input_size=20, channels=4, hidden=6)
    d = 0.9
    plugin = CBPPlugin(rho=0.5, m=0, d=d)
    plugin.attach(model)
    names = [hu.name for hu in plugin.units]
    assert names == ["0", "3", "7", "9"]
    x = torch.randn(5, 1, 20, 20)
    with torch.no_grad():
        model(x)
    act = {k: v.clone() for k, v in plugin.recorder.activity.items()}
    fhats = {}
    for hu in plugin.units:
        fb = act[hu.name].mean(0)
        if hu.spatial == 1:
            fb = fb.mean(-1, keepdim=True)
        fhats[hu.name] = fb  # one step: f = (1-d) fb, fhat = f / (1-d) = fb
    before = {
        hu.name: _consumer_mean_output(hu.consumer, hu, fhats[hu.name]).detach()
        for hu in plugin.units
    }
    conv1_w = model[0].weight.detach().clone()
    replaced = plugin.update_units(act)
    idx = replaced["0"]
    assert len(idx) == 2  # rho * 4 channels
    assert not torch.equal(model[0].weight[idx], conv1_w[idx])
    assert plugin.units[1].spatial == 4  # conv -> flatten -> linear: 4 columns per channel
    for hu in plugin.units:
        nxt = replaced.get(hu.consumer_name, torch.tensor([], dtype=torch.long))
        rows = torch.tensor([r for r in range(hu.consumer.weight.shape[0]) if r not in nxt])
        cols = hu.outgoing_index(replaced[hu.name]).flatten()
        assert torch.all(hu.consumer.weight[rows][:, cols] == 0), hu.name  # kernels / columns
        after = _consumer_mean_output(hu.consumer, hu, fhats[hu.name])
        assert torch.allclose(after[:, rows], before[hu.name][:, rows], atol=1e-5), hu.name


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rho": -0.1},
        {"rho": 1.5},
        {"m": -1},
        {"d": 1.0},
        {"d": -0.1},
        {"utility": "magnitude"},
    ],
)
def test_bad_hyperparameters_raise(kwargs):
    with pytest.raises(ValueError):
        CBPPlugin(**kwargs)


def test_unknown_utility_lists_the_valid_ones():
    with pytest.raises(ValueError, match="adaptable"):
        CBPPlugin(utility="nope")
