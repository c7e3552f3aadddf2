"""Multi-layer perceptron used on MNIST-style streams."""

from __future__ import annotations

from typing import Sequence

from torch import nn

from .activations import make_activation, width_factor


class MLP(nn.Sequential):
    """``Flatten -> [Linear -> act] * len(hidden_sizes) -> Linear`` (the head).

    With ``activation="crelu"`` each hidden layer's output doubles, so the next
    layer's fan-in is ``2 * width``. ``hidden_sizes`` are the producing widths.
    """

    def __init__(
        self,
        input_size: int = 784,
        hidden_sizes: Sequence[int] = (100, 100),
        num_classes: int = 10,
        activation: str = "relu",
        bias: bool = True,
    ):
        if input_size < 1 or num_classes < 1 or any(h < 1 for h in hidden_sizes):
            raise ValueError(
                f"sizes must be positive: input_size={input_size}, "
                f"hidden_sizes={tuple(hidden_sizes)}, num_classes={num_classes}"
            )
        factor = width_factor(activation)
        layers: list[nn.Module] = [nn.Flatten()]
        fan_in = input_size
        for width in hidden_sizes:
            layers += [nn.Linear(fan_in, width, bias=bias), make_activation(activation)]
            fan_in = width * factor
        layers.append(nn.Linear(fan_in, num_classes, bias=bias))
        super().__init__(*layers)
        self.input_size = input_size
        self.hidden_sizes = tuple(hidden_sizes)
        self.num_classes = num_classes
        self.activation = activation
