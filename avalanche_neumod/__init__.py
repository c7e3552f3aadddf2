"""avalanche-neumod: neuromodulation-inspired continual learning for Avalanche."""

from .benchmarks import ExperienceTensors, tensor_benchmark
from .models import MLP, ConvNet, SlimResNet18, hidden_units
from .training import FastDataPlugin, FastNaive, FastTemplate

__version__ = "0.1.0"

__all__ = [
    "ConvNet",
    "ExperienceTensors",
    "FastDataPlugin",
    "FastNaive",
    "FastTemplate",
    "MLP",
    "SlimResNet18",
    "hidden_units",
    "tensor_benchmark",
]
