"""Slim ResNet-18 (Lopez-Paz & Ranzato 2017; the continual-learning standard, nf=20)."""

from __future__ import annotations

import torch
from torch import nn

from .activations import make_activation, width_factor


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection.

    ``act1`` (inside the block) produces the block's hidden units: conv1 -> bn1 ->
    act1 -> conv2. ``activation="crelu"`` applies there only; the residual stream
    (``act2``) stays ReLU so that the widths of the sum agree.
    """

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, activation: str = "relu"):
        super().__init__()
        k = width_factor(activation)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = make_activation(activation)
        self.conv2 = nn.Conv2d(planes * k, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )
        self.act2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


class SlimResNet18(nn.Module):
    """ResNet-18 with ``nf`` base filters (20 by default) and a linear head.

    Global average pooling before the head makes it work for any input size
    (32x32 CIFAR, 64x64 Tiny-ImageNet).
    """

    def __init__(
        self,
        num_classes: int = 100,
        nf: int = 20,
        in_channels: int = 3,
        activation: str = "relu",
    ):
        super().__init__()
        if min(num_classes, nf, in_channels) < 1:
            raise ValueError("SlimResNet18 sizes must be positive")
        self.num_classes = num_classes
        self.activation = activation
        self.conv1 = nn.Conv2d(in_channels, nf, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(nf)
        self.act = nn.ReLU()
        planes, blocks = nf, []
        for i, width in enumerate((nf, 2 * nf, 4 * nf, 8 * nf)):
            for j in range(2):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(planes, width, stride, activation))
                planes = width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(planes, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (the head's input)."""
        out = self.act(self.bn1(self.conv1(x)))
        return self.flatten(self.pool(self.blocks(out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.features(x))
