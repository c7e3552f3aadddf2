"""The hidden-unit helper refuses what it cannot read: functional heads,
reshapes that fold channels into the batch; and accepts the batch-keeping flattens."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from avalanche_neumod.models import (
    UnsupportedModelError,
    hidden_units,
    read_units,
    require_hidden_units,
)
from avalanche_neumod.training.plugins.cbp import CBPPlugin
from avalanche_neumod.training.plugins.redo import ReDoPlugin


class FunctionalHead(nn.Module):
    """The issue's first model: the head is ``F.linear(h, self.w2)`` (no Linear module)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 32)
        self.w2 = nn.Parameter(torch.randn(10, 32) * 0.1)

    def forward(self, x):
        h = F.relu(self.fc1(x.flatten(1)))
        return F.linear(h, self.w2)


class FoldChannels(nn.Module):
    """The issue's second model: ``h.reshape(-1, 26*26)`` moves the 4 channels into the batch."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)  # 28x28 -> 4 x 26x26
        self.fc1 = nn.Linear(26 * 26, 16)
        self.fc2 = nn.Linear(4 * 16, 10)

    def forward(self, x):
        h = F.relu(self.conv(x)).reshape(-1, 26 * 26)  # (4B, 676)
        h = F.relu(self.fc1(h)).reshape(x.size(0), -1)  # (B, 64)
        return self.fc2(h)


def test_functional_head_has_no_units_and_plugins_refuse_it():
    m = FunctionalHead()
    assert m(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    mu = read_units(m)
    assert mu.hidden == [] and "F.linear" in mu.skipped["fc1"]
    with pytest.raises(UnsupportedModelError, match=r"ReDo: .*no hidden units.*fc1.*F\.linear"):
        require_hidden_units(m, "ReDo")
    with pytest.raises(UnsupportedModelError, match="ReDo would never act"):
        ReDoPlugin().attach(m)


def test_cbp_refuses_a_model_without_hidden_units():
    with pytest.raises(UnsupportedModelError, match="CBP"):
        CBPPlugin().attach(FunctionalHead())


def test_plain_linear_model_refused_by_plugins_but_readable():
    m = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    assert read_units(m).output_name == "1" and hidden_units(m) == []
    with pytest.raises(UnsupportedModelError, match="only weight layer is the output layer"):
        ReDoPlugin().attach(m)


def test_reshape_folding_channels_into_batch_refused():
    m = FoldChannels()
    assert m(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    with pytest.raises(UnsupportedModelError, match=r"conv -> fc1: .*reshape\(-1, 676\)"):
        read_units(m)
    with pytest.raises(UnsupportedModelError):
        ReDoPlugin().attach(m)


class _ConvHead(nn.Module):
    """conv(1->3, 3x3) -> relu -> <flatten> -> Linear(3*6*6, 5) -> relu -> Linear(5, 2)."""

    def __init__(self, flatten):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.fc = nn.Linear(3 * 6 * 6, 5)
        self.head = nn.Linear(5, 2)
        if isinstance(flatten, tuple):  # (module, then a function)
            self.flat, self.fn = flatten
        elif isinstance(flatten, nn.Module):
            self.flat, self.fn = flatten, None
        else:
            self.flat, self.fn = None, flatten

    def forward(self, x):
        b = x.size(0)
        h = F.relu(self.conv(x))
        if self.flat is not None:
            h = self.flat(h)
        if self.fn is not None:
            h = self.fn(h, b)
        return self.head(F.relu(self.fc(h)))


def _unpack_shape(h, b):
    n, c, hh, ww = h.shape
    return h.view(n, c * hh * ww)


ACCEPTED = {
    "nn.Flatten()": nn.Flatten(),
    "x.flatten(1)": lambda h, b: h.flatten(1),
    "torch.flatten(x, 1)": lambda h, b: torch.flatten(h, 1),
    "flatten(start_dim=1)": lambda h, b: h.flatten(start_dim=1),
    "view(x.size(0), -1)": lambda h, b: h.view(h.size(0), -1),
    "reshape(x.shape[0], -1)": lambda h, b: h.reshape(h.shape[0], -1),
    "reshape(b, -1), b = input.size(0)": lambda h, b: h.reshape(b, -1),
    "view((x.size(0), -1))": lambda h, b: h.view((h.size(0), -1)),
    "n, c, h, w = x.shape; view(n, c*h*w)": _unpack_shape,
}
REFUSED = {
    "reshape(-1, 36)": lambda h, b: h.reshape(-1, 36).reshape(b, -1),
    "view(-1, 108)": lambda h, b: h.view(-1, 108),
    "view(4, -1)": lambda h, b: h.view(4, -1),
    "torch.flatten(x)": lambda h, b: torch.flatten(h).view(b, -1),
    "nn.Flatten(0)": (nn.Flatten(0), lambda h, b: h.view(b, -1)),
    "view(x.size(1), -1)": lambda h, b: h.view(h.size(1), -1).reshape(b, -1),
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_batch_keeping_flattens_accepted(name):
    m = _ConvHead(ACCEPTED[name])
    assert m(torch.zeros(4, 1, 8, 8)).shape == (4, 2)
    conv, fc = hidden_units(m)
    assert (conv.name, conv.consumer_name, conv.spatial) == ("conv", "fc", 36)
    assert conv.outgoing_index(2).tolist() == list(range(72, 108))
    assert (fc.name, fc.consumer_name) == ("fc", "head")


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_unprovable_reshapes_refused(name):
    m = _ConvHead(REFUSED[name])
    assert m(torch.zeros(4, 1, 8, 8)).shape == (4, 2)  # runs, with the batch of 4
    with pytest.raises(UnsupportedModelError, match="conv -> fc: the path reshapes") as e:
        read_units(m)
    assert "nn.Flatten()" in str(e.value)  # says what to use instead
