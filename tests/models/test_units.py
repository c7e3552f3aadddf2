"""The hidden-unit helper: unit counts, producer/consumer pairing, capture, errors."""

import gc
import weakref

import pytest
import torch
from avalanche.models import SimpleMLP
from torch import nn

from avalanche_neumod.models import (
    MLP,
    ConvNet,
    SlimResNet18,
    UnitRecorder,
    UnsupportedModelError,
    hidden_units,
    output_layer,
    penultimate_features,
    read_units,
)


def test_mlp_units_pair_consecutive_linears():
    m = MLP(784, (30, 20), 10)
    units = hidden_units(m)
    assert [(u.producer, u.consumer) for u in units] == [(m[1], m[3]), (m[3], m[5])]
    assert [u.n_units for u in units] == [30, 20]
    assert all(isinstance(u.activation, nn.ReLU) for u in units)
    assert output_layer(m) == ("5", m[5])


def test_reading_units_keeps_no_reference_to_the_model():
    # freed as soon as the caller lets go, without waiting for a full collection
    # (torch.fx's tracer sits in a reference cycle; it must not hold the model)
    gc.collect()
    gc.disable()
    try:
        m = MLP(784, (30, 20), 10)
        assert len(read_units(m).hidden) == 2
        ref = weakref.ref(m)
        del m
        assert ref() is None
    finally:
        gc.enable()


def test_convnet_conv_flatten_linear_spatial():
    m = ConvNet()
    units = hidden_units(m)
    assert [u.n_units for u in units] == [16, 16, 100, 100]
    conv2 = units[1]
    assert conv2.consumer is m[7] and conv2.spatial == 25 and conv2.is_conv
    # the consumer columns fed by channel 3 are the 25 flattened positions of channel 3
    assert conv2.outgoing_index(3).tolist() == list(range(75, 100))
    assert conv2.outgoing_weights().shape == (100, 16, 25)
    assert torch.equal(conv2.outgoing_weights()[:, 3], m[7].weight[:, 75:100])


def test_crelu_width_factor_and_outgoing_columns():
    m = MLP(10, (4,), 3, activation="crelu")
    (u,) = hidden_units(m)
    assert u.width_factor == 2 and u.n_units == 4
    # unit 1 feeds consumer columns 1 (relu(x)) and 5 (relu(-x))
    assert u.outgoing_index(1).tolist() == [1, 5]
    assert u.outgoing_index(torch.tensor([0, 3])).tolist() == [[0, 4], [3, 7]]


def test_resnet_block_internal_units_only():
    m = SlimResNet18(num_classes=5, nf=4)
    units = hidden_units(m)
    assert len(units) == 8
    assert all(u.name.endswith("conv1") and u.consumer_name.endswith("conv2") for u in units)
    assert all(isinstance(u.norm, nn.BatchNorm2d) for u in units)
    assert output_layer(m)[1] is m.linear
    assert len(read_units(m).layers) == 21  # 17 convs + 3 shortcut convs + head


def test_plain_sequential_and_avalanche_simple_mlp():
    seq = nn.Sequential(
        nn.Conv2d(1, 6, 3),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(6 * 13 * 13, 8),
        nn.Tanh(),
        nn.Dropout(0.1),
        nn.Linear(8, 2),
    )
    units = hidden_units(seq)
    assert [(u.n_units, u.spatial) for u in units] == [(6, 169), (8, 1)]
    assert isinstance(units[0].norm, nn.BatchNorm2d)
    s = SimpleMLP(num_classes=10, hidden_size=32)
    (u,) = hidden_units(s)
    assert u.consumer is s.classifier and u.n_units == 32


def test_recorder_captures_what_the_consumer_reads():
    m = ConvNet(in_channels=1, input_size=28)
    units = hidden_units(m)
    x = torch.randn(5, 1, 28, 28)
    with UnitRecorder(units) as rec:
        m(x)
    a = rec.activity
    assert a["0"].shape == (5, 1, 16, 144)  # post-pool 12x12 per channel
    assert a["3"].shape == (5, 1, 16, 16)  # flattened 4x4 per channel
    assert a["7"].shape == (5, 1, 100, 1)
    h = m[6](m[5](m[4](m[3](m[2](m[1](m[0](x)))))))
    assert torch.equal(a["3"].reshape(5, -1), h)
    assert not a["3"].requires_grad
    assert rec._handles == [] and len(list(rec)) == 4


def test_recorder_can_keep_the_graph():
    m = MLP(6, (4,), 2)
    rec = UnitRecorder(hidden_units(m), detach=False)
    m(torch.randn(3, 6))
    assert rec.activity["1"].requires_grad
    rec.remove()


def test_penultimate_features():
    m = MLP(6, (4, 3), 2)
    x = torch.randn(5, 6)
    assert torch.equal(penultimate_features(m, x), torch.relu(m[3](torch.relu(m[1](x)))))


class _Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 2)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: not traceable
            return self.b(self.a(x))
        return self.b(x)


class _Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)

    def forward(self, x):
        return self.a(self.a(x))


def test_unreadable_models_raise_clear_errors():
    with pytest.raises(UnsupportedModelError, match="could not trace"):
        read_units(_Branchy())
    with pytest.raises(UnsupportedModelError, match="more than once"):
        read_units(_Shared())
    with pytest.raises(UnsupportedModelError, match="no Linear or Conv2d"):
        read_units(nn.Sequential(nn.ReLU()))


def test_redo_scores_of_means_scores_each_layer_against_its_own_mean():
    """Several layers at once (one-hot layer matrix) equal ``redo_scores`` per layer;
    a silent layer scores 0."""
    from avalanche_neumod.models.units import redo_scores, redo_scores_of_means

    torch.manual_seed(0)
    acts = [torch.randn(6, 4), torch.zeros(6, 2), torch.randn(6, 3) * 5]
    index = torch.tensor([0] * 4 + [1] * 2 + [2] * 3)
    layers = torch.nn.functional.one_hot(index).float()
    mean_abs = torch.cat([a.abs().mean(0) for a in acts])
    got = redo_scores_of_means(mean_abs, layers)
    torch.testing.assert_close(got, torch.cat([redo_scores(a) for a in acts]))
    assert torch.all(got[4:6] == 0)
    torch.testing.assert_close(redo_scores_of_means(mean_abs[:4]), redo_scores(acts[0]))
