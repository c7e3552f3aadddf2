"""Hidden-unit introspection: the one place that knows how to walk a model (DESIGN 3).

A *hidden unit* is an output feature of a ``Linear`` layer (or an output channel
of a ``Conv2d``) together with the single layer that consumes it. The model's
forward graph is read with ``torch.fx``: from each producing layer we follow
the unit-preserving operations (normalisation, activation, pooling, dropout,
flatten/view) to the one consuming ``Linear``/``Conv2d``. A producer whose
output branches (a residual sum, two consumers) has no hidden units in this
sense and is skipped; the layer whose output reaches the model's output is the
*output layer*.

Activity capture (:class:`UnitRecorder`) uses forward pre-hooks on the
consumers, so the recorded activity of a unit is what the next layer reads
(after activation, pooling and flatten), reshaped to
``(batch, width_factor, n_units, spatial)``.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Iterator

import torch
import torch.fx as fx
from torch import nn

from .activations import CReLU

WEIGHT_LAYERS = (nn.Linear, nn.Conv2d)

# Modules that keep units separate (per-unit maps, pooling, reshapes).
_PASS_MODULES = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Softplus,
    nn.Dropout,
    nn.Dropout2d,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.Flatten,
    nn.Identity,
    CReLU,
)
_ACTIVATION_MODULES = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Softplus,
    CReLU,
)
_PASS_FUNCTIONS = {
    torch.relu,
    torch.tanh,
    torch.sigmoid,
    torch.flatten,
    nn.functional.relu,
    nn.functional.leaky_relu,
    nn.functional.gelu,
    nn.functional.elu,
    nn.functional.silu,
    nn.functional.dropout,
    nn.functional.max_pool2d,
    nn.functional.avg_pool2d,
    nn.functional.adaptive_avg_pool2d,
    nn.functional.adaptive_max_pool2d,
}
_PASS_METHODS = {"relu", "tanh", "sigmoid", "view", "reshape", "flatten", "contiguous"}
# Users that only read a tensor's shape do not consume its units.
_SHAPE_METHODS = {"size", "dim", "shape"}


def _width(layer: nn.Module, out: bool) -> int:
    """Output (or input) features of a Linear, channels of a Conv2d."""
    if isinstance(layer, nn.Linear):
        return layer.out_features if out else layer.in_features
    return layer.out_channels if out else layer.in_channels


class UnsupportedModelError(ValueError):
    """The hidden-unit helper cannot read this model."""


@dataclass(frozen=True)
class HiddenUnits:
    """The hidden units of one producing layer.

    Attributes:
        name: qualified name of the producing layer.
        producer: the ``Linear``/``Conv2d`` whose outputs are the units.
        consumer_name: qualified name of the consuming layer.
        consumer: the ``Linear``/``Conv2d`` that reads them.
        activation: the activation module on the path (``None`` if functional).
        norm: a normalisation module on the path, if any.
        width_factor: consumer inputs per unit and position (2 for CReLU).
        spatial: consumer input columns per unit copy (``H*W`` for
            conv -> flatten -> linear, else 1).
    """

    name: str
    producer: nn.Module
    consumer_name: str
    consumer: nn.Module
    activation: nn.Module | None = None
    norm: nn.Module | None = None
    width_factor: int = 1
    spatial: int = 1

    @property
    def n_units(self) -> int:
        return _width(self.producer, out=True)

    @property
    def is_conv(self) -> bool:
        return isinstance(self.producer, nn.Conv2d)

    def outgoing_index(self, unit: int | torch.Tensor) -> torch.Tensor:
        """Consumer input columns (dim 1 of its weight) fed by ``unit``(s).

        Column of (copy j, unit i, position s) is ``(j * n + i) * spatial + s``.
        Returns a flat LongTensor for a scalar unit, else shape ``(len(units), k)``.
        """
        units = torch.as_tensor(unit, dtype=torch.long)
        j = torch.arange(self.width_factor).view(-1, 1)
        s = torch.arange(self.spatial).view(1, -1)
        cols = ((j * self.n_units).unsqueeze(0) + units.view(-1, 1, 1)) * self.spatial
        cols = (cols + s.unsqueeze(0)).flatten(1)
        return cols[0] if units.dim() == 0 else cols

    def outgoing_weights(self) -> torch.Tensor:
        """Consumer weights grouped per unit: ``(out, n_units, width_factor*spatial*k*k)``."""
        w = self.consumer.weight
        out = w.shape[0]
        w = w.reshape(out, self.width_factor, self.n_units, -1)
        return w.transpose(1, 2).reshape(out, self.n_units, -1)

    def unit_activity(self, consumer_input: torch.Tensor) -> torch.Tensor:
        """Reshape what the consumer reads to ``(batch, width_factor, n_units, positions)``."""
        b = consumer_input.shape[0]
        return consumer_input.reshape(b, self.width_factor, self.n_units, -1)


@dataclass(frozen=True)
class ModelUnits:
    """Everything the helper read from a model."""

    hidden: list[HiddenUnits]
    layers: dict[str, nn.Module] = field(default_factory=dict)  # all weight layers, forward order
    output_name: str | None = None

    @property
    def output_layer(self) -> nn.Module | None:
        return self.layers.get(self.output_name) if self.output_name else None


class _LeafTracer(fx.Tracer):
    """Keeps our activation modules (CReLU) and every weight layer as leaves.

    Subclasses of ``Linear``/``Conv2d`` (e.g. NGM's gain layers, which swap a
    layer's class in place) stay single ``call_module`` nodes, so the path sees them.
    """

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, (CReLU, *WEIGHT_LAYERS)) or super().is_leaf_module(m, qualname)


def _trace(model: nn.Module) -> tuple[fx.Graph, dict[str, nn.Module]]:
    try:
        graph = _LeafTracer().trace(model)
    except Exception as exc:  # fx raises many types for untraceable code
        raise UnsupportedModelError(
            f"cannot read the hidden units of {type(model).__name__}: torch.fx could not "
            f"trace its forward ({type(exc).__name__}: {exc}). Supported: this library's "
            "MLP, ConvNet and SlimResNet18, nn.Sequential stacks of Linear/Conv2d/"
            "activation/pooling/flatten/normalisation layers, and models whose forward "
            "is a traceable chain of such layers."
        ) from exc
    return graph, dict(model.named_modules())


def _consumers(node: fx.Node) -> list[fx.Node]:
    return [
        u
        for u in node.users
        if not (u.op == "call_method" and u.target in _SHAPE_METHODS)
        and not (u.op == "call_function" and u.target is getattr and u.args[1] == "shape")
    ]


def _passes(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[node.target], _PASS_MODULES)
    if node.op == "call_function":
        return node.target in _PASS_FUNCTIONS
    if node.op == "call_method":
        return node.target in _PASS_METHODS
    return False


def _reaches_output(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    cur = node
    while True:
        users = _consumers(cur)
        if len(users) != 1:
            return False
        (u,) = users
        if u.op == "output":
            return True
        if not _passes(u, modules) and not (
            u.op == "call_function" and u.target in (operator.getitem,)
        ):
            return False
        cur = u


def read_units(model: nn.Module) -> ModelUnits:
    """Trace ``model`` and list its weight layers, hidden units and output layer.

    Raises :class:`UnsupportedModelError` when the model cannot be traced or a
    layer module is called more than once.
    """
    graph, modules = _trace(model)
    layer_nodes = [
        n
        for n in graph.nodes
        if n.op == "call_module" and isinstance(modules[n.target], WEIGHT_LAYERS)
    ]
    names = [n.target for n in layer_nodes]
    if len(set(names)) != len(names):
        raise UnsupportedModelError(
            f"{type(model).__name__} calls a weight layer more than once; "
            "hidden units need one producer per layer"
        )
    if not layer_nodes:
        raise UnsupportedModelError(f"{type(model).__name__} has no Linear or Conv2d layer")
    hidden: list[HiddenUnits] = []
    output_name = None
    for node in layer_nodes:
        producer = modules[node.target]
        if _reaches_output(node, modules):
            output_name = node.target
            continue
        unit = _follow(node, producer, modules)
        if unit is not None:
            hidden.append(unit)
    return ModelUnits(hidden, {n: modules[n] for n in names}, output_name)


def _follow(node: fx.Node, producer: nn.Module, modules: dict[str, nn.Module]):
    activation = norm = None
    factor = 1
    cur = node
    while True:
        users = _consumers(cur)
        if len(users) != 1:
            return None
        (u,) = users
        if u.op == "call_module" and isinstance(modules[u.target], WEIGHT_LAYERS):
            if u.args[0] is not cur:
                return None
            consumer = modules[u.target]
            n = _width(producer, out=True)
            fan_in = _width(consumer, out=False)
            if fan_in % (n * factor):
                raise UnsupportedModelError(
                    f"{node.target} -> {u.target}: fan-in {fan_in} is not a multiple of "
                    f"{n * factor} units"
                )
            spatial = fan_in // (n * factor)
            if isinstance(consumer, nn.Conv2d) and spatial != 1:
                raise UnsupportedModelError(f"{node.target} -> {u.target}: channel mismatch")
            return HiddenUnits(
                node.target, producer, u.target, consumer, activation, norm, factor, spatial
            )
        if not _passes(u, modules):
            return None
        if u.op == "call_module":
            m = modules[u.target]
            if isinstance(m, _ACTIVATION_MODULES):
                activation = m
                factor *= getattr(m, "width_factor", 1)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)):
                norm = m
        cur = u


def hidden_units(model: nn.Module) -> list[HiddenUnits]:
    """The model's hidden units, one entry per producing layer, in forward order."""
    return read_units(model).hidden


def weight_layers(model: nn.Module) -> dict[str, nn.Module]:
    """All ``Linear``/``Conv2d`` layers by qualified name, in forward order."""
    return read_units(model).layers


def output_layer(model: nn.Module) -> tuple[str, nn.Module]:
    """Name and module of the layer whose output is the model's output."""
    mu = read_units(model)
    if mu.output_name is None:
        raise UnsupportedModelError(
            f"{type(model).__name__}: no single Linear/Conv2d layer feeds the output"
        )
    return mu.output_name, mu.output_layer


def penultimate_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The output layer's input for a batch ``x`` (flattened to ``(batch, features)``)."""
    _, head = output_layer(model)
    store: list[torch.Tensor] = []
    handle = head.register_forward_pre_hook(lambda m, args: store.append(args[0]))
    try:
        model(x)
    finally:
        handle.remove()
    return store[0].flatten(1)


class UnitRecorder:
    """Record hidden-unit activity during forward passes (forward pre-hooks on consumers).

    ``recorder.activity[name]`` holds the last batch's activity of the units of
    producer ``name`` as ``(batch, width_factor, n_units, positions)``. With
    ``detach=True`` (default) it holds no graph. Use as a context manager or call
    :meth:`remove`.
    """

    def __init__(self, units: list[HiddenUnits], detach: bool = True, enabled: bool = True):
        self.units = units
        self.detach = detach
        self.enabled = enabled
        self.activity: dict[str, torch.Tensor] = {}
        self._handles = [u.consumer.register_forward_pre_hook(self._hook(u)) for u in units]

    def _hook(self, unit: HiddenUnits):
        def hook(module: nn.Module, args: tuple) -> None:
            if self.enabled:
                h = args[0].detach() if self.detach else args[0]
                self.activity[unit.name] = unit.unit_activity(h)

        return hook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> UnitRecorder:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __iter__(self) -> Iterator[tuple[HiddenUnits, torch.Tensor]]:
        for u in self.units:
            if u.name in self.activity:
                yield u, self.activity[u.name]
