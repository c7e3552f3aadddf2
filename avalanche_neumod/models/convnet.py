"""The small ConvNet of the plasticity literature (Random-Label / Shuffle CIFAR)."""

from __future__ import annotations

from torch import nn

from .activations import make_activation, width_factor


class ConvNet(nn.Sequential):
    """conv(16@5x5) -> act -> pool -> conv(16@5x5) -> act -> pool -> fc -> act -> fc -> act -> head.

    ``channels`` and ``hidden`` set the widths (defaults 16 and 100: the network
    used on Random-Label CIFAR in the plasticity literature);
    ``input_size`` is the image side (32 for CIFAR, 28 for MNIST).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        input_size: int = 32,
        channels: int = 16,
        hidden: int = 100,
        activation: str = "relu",
    ):
        if min(in_channels, num_classes, channels, hidden) < 1:
            raise ValueError("ConvNet sizes must be positive")
        side = ((input_size - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"input_size={input_size} is too small for two 5x5 convs and pools")
        k = width_factor(activation)
        super().__init__(
            nn.Conv2d(in_channels, channels, 5),
            make_activation(activation),
            nn.MaxPool2d(2),
            nn.Conv2d(channels * k, channels, 5),
            make_activation(activation),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(channels * k * side * side, hidden),
            make_activation(activation),
            nn.Linear(hidden * k, hidden),
            make_activation(activation),
            nn.Linear(hidden * k, num_classes),
        )
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.input_size = input_size
        self.activation = activation
