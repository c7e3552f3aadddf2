"""avalanche-neumod: neuromodulation-inspired continual learning for Avalanche.

Subpackages: ``models`` (networks, hidden units, gains, NeuMoSync network),
``training`` (strategies, plugins, the fast path), ``benchmarks`` (datasets and
streams), ``evaluation`` (metrics), ``experiment`` and ``reporting`` (suites and
reports), ``cli`` (``neumod``).
"""

from .benchmarks import ExperienceTensors, get_stream, tensor_benchmark
from .models import MLP, ConvNet, SlimResNet18, hidden_units
from .training import (
    CBP,
    MAML,
    NGMSGD,
    FastDataPlugin,
    FastNaive,
    FastTemplate,
    L2Init,
    L2InitEWC,
    NeuMoSync,
    ReDo,
    ShrinkPerturb,
)

__version__ = "0.1.0"

__all__ = [
    "CBP",
    "ConvNet",
    "ExperienceTensors",
    "FastDataPlugin",
    "FastNaive",
    "FastTemplate",
    "L2Init",
    "L2InitEWC",
    "MAML",
    "MLP",
    "NGMSGD",
    "NeuMoSync",
    "ReDo",
    "ShrinkPerturb",
    "SlimResNet18",
    "get_stream",
    "hidden_units",
    "tensor_benchmark",
]
