"""Shapes and parameter counts of the library's networks."""

import pytest
import torch
from torch import nn

from avalanche_neumod.models import MLP, ConvNet, CReLU, SlimResNet18, make_activation


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_mlp_shape_and_count():
    m = MLP(784, (100, 100), 10)
    assert m(torch.randn(4, 1, 28, 28)).shape == (4, 10)
    assert n_params(m) == 784 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10 == 89_610


def test_crelu_doubles_width_and_next_fan_in():
    x = torch.tensor([[1.0, -2.0]])
    assert torch.equal(CReLU()(x), torch.tensor([[1.0, 0.0, 0.0, 2.0]]))
    m = MLP(784, (50,), 10, activation="crelu")
    assert m[3].in_features == 100
    assert m(torch.randn(2, 784)).shape == (2, 10)


def test_convnet_cifar_and_mnist_sizes():
    assert ConvNet()(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert ConvNet(in_channels=1, input_size=28)(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert ConvNet(activation="crelu")(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("side", [32, 64])
def test_slim_resnet18_any_input_size(side):
    m = SlimResNet18(num_classes=7, nf=4)
    assert m(torch.randn(2, 3, side, side)).shape == (2, 7)
    assert m.features(torch.randn(2, 3, side, side)).shape == (2, 32)


def test_bad_arguments():
    with pytest.raises(ValueError, match="valid"):
        make_activation("swish9")
    with pytest.raises(ValueError, match="positive"):
        MLP(784, (0,), 10)
    with pytest.raises(ValueError, match="too small"):
        ConvNet(input_size=8)
    with pytest.raises(ValueError):
        SlimResNet18(nf=0)
