"""Stream generators (DESIGN 8), all in one namespace, and the registry by name.

Each generator returns an ordinary Avalanche benchmark built with
:func:`~avalanche_neumod.benchmarks.tensor_data.tensor_benchmark`, with
``bm.neumod_info`` (name, input shape, number of classes, what accuracy means, ...).
See ``docs/streams.md``.
"""

from __future__ import annotations

from .permuted import permuted_mnist
from .random_label import random_label_cifar10, random_label_mnist

__all__ = ["permuted_mnist", "random_label_cifar10", "random_label_mnist"]
