"""CReLU: doubled widths and parameter matching."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from avalanche_neumod.models import MLP, ConvNet, SlimResNet18
from avalanche_neumod.models.activations import CReLU as CReLUActivation
from avalanche_neumod.models.crelu import count_params, crelu_widths, match_params, mlp_params
from avalanche_neumod.training.strategies import CReLU


def test_output_width_doubles():
    x = torch.randn(3, 7)
    y = CReLUActivation()(x)
    assert y.shape == (3, 14)
    assert torch.equal(y, torch.cat([x.clamp_min(0), (-x).clamp_min(0)], dim=1))
    model = MLP(10, (6, 5), 3, activation="crelu")
    assert model[3].in_features == 12 and model[5].in_features == 10
    out = []
    model[3].register_forward_pre_hook(lambda m, a: out.append(a[0].shape))
    model(torch.randn(2, 10))
    assert out == [torch.Size([2, 12])]


@pytest.mark.parametrize(
    "relu",
    [
        lambda: MLP(),
        lambda: MLP(784, (50, 50), 10),
        lambda: MLP(784, (400, 400, 400), 10),
        lambda: ConvNet(),
        lambda: ConvNet(in_channels=1, input_size=28),
        lambda: SlimResNet18(num_classes=10, nf=20),
    ],
)
def test_match_params_within_5_percent(relu):
    model = relu()
    crelu = match_params(model)
    assert any(isinstance(m, CReLUActivation) for m in crelu.modules())
    n, nc = count_params(model), count_params(crelu)
    assert abs(nc - n) / n <= 0.05
    same_width = match_params(model, match=False)
    assert count_params(same_width) > 1.05 * n  # without matching, CReLU is larger


def test_crelu_widths_for_mlp():
    assert crelu_widths((100, 100)) == [91, 91]
    assert mlp_params(784, (91, 91), 10, factor=2) == count_params(
        MLP(784, (91, 91), 10, activation="crelu")
    )


def test_strategy_builds_the_matched_model_and_its_optimizer():
    relu = MLP(784, (100, 100), 10)
    opt = torch.optim.Adam(relu.parameters(), lr=3e-4, weight_decay=1e-5)
    s = CReLU(model=relu, optimizer=opt, evaluator=None)
    assert s.model is not relu and s.model.hidden_sizes == (91, 91)
    assert s.model.activation == "crelu"
    assert isinstance(s.optimizer, torch.optim.Adam)
    assert s.optimizer.defaults["lr"] == 3e-4 and s.optimizer.defaults["weight_decay"] == 1e-5
    assert {id(p) for p in s.optimizer.param_groups[0]["params"]} == {
        id(p) for p in s.model.parameters()
    }
    given = MLP(784, (60,), 10, activation="crelu")
    s2 = CReLU(model=given, optimizer=torch.optim.SGD(given.parameters(), lr=0.1), evaluator=None)
    assert s2.model is given


def test_unsupported_model_raises():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="MLP"):
        CReLU(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), evaluator=None)
