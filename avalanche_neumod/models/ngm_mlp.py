"""The NGM-SGD authors' MLP protocol (docs/ngm.md): initialisation and untrained biases.

Their results depend on it (momentum-SGD's gap halves without it): hidden
weights drawn from N(0, 0.01^2), head weights from N(0, 0.05^2), all biases 0
and not trained. Inputs are standardised with MNIST's mean and std
(:data:`MNIST_MEAN`, :data:`MNIST_STD`), which is the stream's job; use
:func:`standardise_mnist` on raw [0, 1] pixels. Every optimiser of the study
(NGM-SGD, SGD, momentum-SGD, Adam) runs this same network.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from ..argument_rules import check_real
from .mlp import MLP
from .units import read_units

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


def ngm_mlp(
    input_size: int = 784,
    hidden_sizes: Sequence[int] = (400, 400),
    num_classes: int = 10,
    hidden_std: float = 0.01,
    head_std: float = 0.05,
    train_biases: bool = False,
    generator: Optional[torch.Generator] = None,
) -> MLP:
    """An :class:`~avalanche_neumod.models.MLP` initialised as the authors' (784-400-400-10).

    Weights are drawn from N(0, ``hidden_std``^2) for hidden layers and
    N(0, ``head_std``^2) for the head; biases are 0 and, unless ``train_biases``,
    frozen (``requires_grad=False``), so any optimiser built over the trainable
    parameters leaves them alone. ``generator`` (else torch's global RNG) draws
    the weights.
    """
    check_real("hidden_std", hidden_std, 0.0)
    check_real("head_std", head_std, 0.0)
    model = MLP(input_size, hidden_sizes, num_classes)
    mu = read_units(model)
    with torch.no_grad():
        for name, layer in mu.layers.items():
            std = head_std if name == mu.output_name else hidden_std
            layer.weight.normal_(0.0, std, generator=generator)
            layer.bias.zero_()
            layer.bias.requires_grad_(train_biases)
    return model


def standardise_mnist(x: torch.Tensor) -> torch.Tensor:
    """``(x - 0.1307) / 0.3081`` for MNIST pixels in [0, 1] (the authors' input transform)."""
    return (x - MNIST_MEAN) / MNIST_STD
