"""Networks and the hidden-unit helper (:mod:`.units`, the one place that walks a model)."""

from .activations import CReLU, make_activation
from .convnet import ConvNet
from .crelu import count_params, crelu_widths, match_params
from .mlp import MLP
from .neumosync import NeuMoSyncNetwork
from .ngm_mlp import ngm_mlp
from .resnet import SlimResNet18
from .units import (
    HiddenUnits,
    ModelUnits,
    UnitRecorder,
    UnsupportedModelError,
    default_init_bound,
    dormant_fraction,
    hidden_units,
    output_layer,
    penultimate_features,
    read_units,
    redo_scores,
    redo_scores_of_means,
    reinit_units,
    require_hidden_units,
    unit_network,
)

__all__ = [
    "CReLU",
    "ConvNet",
    "HiddenUnits",
    "MLP",
    "ModelUnits",
    "NeuMoSyncNetwork",
    "SlimResNet18",
    "UnitRecorder",
    "UnsupportedModelError",
    "count_params",
    "crelu_widths",
    "default_init_bound",
    "dormant_fraction",
    "hidden_units",
    "make_activation",
    "match_params",
    "ngm_mlp",
    "output_layer",
    "penultimate_features",
    "read_units",
    "redo_scores",
    "redo_scores_of_means",
    "reinit_units",
    "require_hidden_units",
    "unit_network",
]
