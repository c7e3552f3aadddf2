"""Gain layers: z = (x @ W.T) * g + b, attached in place on any readable model."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from avalanche_neumod.models import MLP, SlimResNet18, read_units
from avalanche_neumod.models.ngm_mlp import ngm_mlp, standardise_mnist
from avalanche_neumod.training.ngm.gains import (
    GainConv2d,
    GainLinear,
    attach_gains,
    gain_buffers,
    gain_layers,
    remove_gains,
)


def _randomise(gains: dict[str, torch.Tensor]) -> None:
    for g in gains.values():
        g.copy_(torch.rand_like(g) + 0.5)


def test_linear_computes_scaled_preactivation_plus_bias():
    layer = nn.Linear(5, 3)
    model = nn.Sequential(layer)
    gains = attach_gains(model)
    _randomise(gains)
    g = gains["0"]
    x = torch.randn(7, 5)
    expected = (x @ layer.weight.T) * g + layer.bias
    assert torch.allclose(model(x), expected, atol=1e-6)
    # the bias is not scaled: with g != 1, (x @ W.T + b) * g would differ
    assert not torch.allclose(model(x), (x @ layer.weight.T + layer.bias) * g, atol=1e-3)


def test_conv_gain_is_per_output_channel():
    conv = nn.Conv2d(2, 4, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    gains = attach_gains(model, ["0"])
    assert isinstance(conv, GainConv2d) and gains["0"].shape == (4,)
    _randomise(gains)
    x = torch.randn(2, 2, 6, 6)
    z = F.conv2d(x, conv.weight, None, padding=1)
    expected = z * gains["0"].view(1, -1, 1, 1) + conv.bias.view(1, -1, 1, 1)
    assert torch.allclose(conv(x), expected, atol=1e-6)


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_weight_gradient_is_scaled_by_gain(kind):
    """dL/dW of the gained layer = diag(g) dL/dW_eff of a plain layer with W_eff = diag(g) W."""
    torch.manual_seed(1)
    if kind == "linear":
        plain, x = nn.Linear(6, 4).double(), torch.randn(5, 6, dtype=torch.double)
    else:
        plain, x = nn.Conv2d(2, 4, 2).double(), torch.randn(1, 2, 3, 3, dtype=torch.double)
    gained = copy.deepcopy(plain)
    g = attach_gains(nn.Sequential(gained))["0"]
    g.copy_(torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.double))
    shape = (-1,) + (1,) * (plain.weight.dim() - 1)
    with torch.no_grad():
        plain.weight.mul_(g.view(shape))  # W_eff = diag(g) W
    target = torch.randn_like(plain(x))
    ((gained(x) - target) ** 2).sum().backward()
    ((plain(x) - target) ** 2).sum().backward()
    assert torch.allclose(gained(x), plain(x), atol=1e-12)
    assert torch.allclose(gained.weight.grad, plain.weight.grad * g.view(shape), atol=1e-10)
    assert torch.allclose(gained.bias.grad, plain.bias.grad, atol=1e-10)
    # and finite differences agree with autograd through the gain
    w = gained.weight.detach().clone().requires_grad_(True)
    f = (lambda w: F.linear(x, w) * g) if kind == "linear" else None
    if f is None:

        def f(w):
            return F.conv2d(x, w) * g.view(1, -1, 1, 1)

    assert torch.autograd.gradcheck(f, (w,))


def test_mlp_all_layers():
    model = MLP(20, (8, 6), 3)
    gains = attach_gains(model, "all")
    assert list(gains) == ["1", "3", "5"]
    assert [g.shape[0] for g in gains.values()] == [8, 6, 3]
    assert all(isinstance(m, GainLinear) for m in gain_layers(model).values())
    # the hidden-unit helper still reads the gained model
    mu = read_units(model)
    assert [h.name for h in mu.hidden] == ["1", "3"] and mu.output_name == "5"
    assert all(torch.equal(g, torch.ones_like(g)) for g in gains.values())


def test_slim_resnet_head_only():
    model = SlimResNet18(num_classes=5, nf=4)
    gains = attach_gains(model, "head")
    assert list(gains) == ["linear"] and gains["linear"].shape == (5,)
    assert list(gain_layers(model)) == ["linear"]
    x = torch.randn(2, 3, 8, 8)
    feats = model.features(x)
    gains["linear"].fill_(2.0)
    expected = (feats @ model.linear.weight.T) * 2.0 + model.linear.bias
    assert torch.allclose(model(x), expected, atol=1e-5)


def test_buffers_state_dict_dtype_deepcopy():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    gains = attach_gains(model, g0=1.5, g_init="g0")
    assert "0.gain" in model.state_dict() and "2.gain" in model.state_dict()
    assert all(torch.all(g == 1.5) for g in gains.values())
    assert not any(n.endswith("gain") for n, _ in model.named_parameters())
    clone = copy.deepcopy(model)
    gain_buffers(clone)["0"].fill_(7.0)
    assert torch.all(gains["0"] == 1.5)  # the copy is independent
    model.double()
    assert model[0].gain.dtype == torch.float64  # moves and converts with the model
    loaded = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    attach_gains(loaded)
    loaded.load_state_dict(clone.state_dict())
    assert torch.all(loaded[0].gain == 7.0)


def test_attach_twice_is_idempotent_and_keeps_parameters():
    model = MLP(10, (5,), 2)
    params = [id(p) for p in model.parameters()]
    layer = model[1]
    gains = attach_gains(model)
    gains["1"].fill_(3.0)
    again = attach_gains(model, ["1"], g0=1.0)
    assert again["1"] is gains["1"] and torch.all(again["1"] == 3.0)
    assert model[1] is layer and [id(p) for p in model.parameters()] == params


def test_bad_layer_names_list_valid_ones():
    model = MLP(10, (5,), 2)
    with pytest.raises(ValueError, match=r"\['1', '3'\]"):
        attach_gains(model, ["nope"])
    with pytest.raises(ValueError, match="'all', 'head'"):
        attach_gains(model, "every")
    with pytest.raises(ValueError):
        attach_gains(model, [])


def test_remove_gains_fold_keeps_function():
    model = MLP(10, (5,), 2)
    _randomise(attach_gains(model))
    x = torch.randn(3, 10)
    before = model(x)
    remove_gains(model, fold=True)
    assert type(model[1]) is nn.Linear and "1.gain" not in model.state_dict()
    assert torch.allclose(model(x), before, atol=1e-6)


def test_ngm_mlp_protocol_init():
    torch.manual_seed(0)
    model = ngm_mlp()
    layers = read_units(model).layers
    assert [m.weight.shape for m in layers.values()] == [(400, 784), (400, 400), (10, 400)]
    assert abs(layers["1"].weight.std().item() - 0.01) < 5e-4
    assert abs(layers["3"].weight.std().item() - 0.01) < 5e-4
    assert abs(layers["5"].weight.std().item() - 0.05) < 5e-3
    for m in layers.values():
        assert torch.all(m.bias == 0) and not m.bias.requires_grad
        assert m.weight.requires_grad
    x = torch.rand(4, 1, 28, 28)
    assert torch.allclose(standardise_mnist(x), (x - 0.1307) / 0.3081)
