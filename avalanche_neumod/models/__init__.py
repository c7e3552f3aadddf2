"""Networks and the hidden-unit helper (DESIGN 3)."""

from .activations import CReLU, make_activation
from .convnet import ConvNet
from .mlp import MLP
from .resnet import SlimResNet18
from .units import (
    HiddenUnits,
    ModelUnits,
    UnitRecorder,
    UnsupportedModelError,
    hidden_units,
    output_layer,
    penultimate_features,
    read_units,
    weight_layers,
)

__all__ = [
    "CReLU",
    "ConvNet",
    "HiddenUnits",
    "MLP",
    "ModelUnits",
    "SlimResNet18",
    "UnitRecorder",
    "UnsupportedModelError",
    "hidden_units",
    "make_activation",
    "output_layer",
    "penultimate_features",
    "read_units",
    "weight_layers",
]
