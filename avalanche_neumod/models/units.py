"""Hidden-unit introspection: the one place that knows how to walk a model.

A *hidden unit* is an output feature of a ``Linear`` layer (or an output channel
of a ``Conv2d``) together with the single layer that consumes it. The model's
forward graph is read with ``torch.fx``: from each producing layer we follow
the unit-preserving operations (normalisation, activation, pooling, dropout,
flatten/view) to the one consuming ``Linear``/``Conv2d``. A producer whose
output branches (a residual sum, two consumers) has no hidden units in this
sense and is skipped; the layer whose output reaches the model's output is the
*output layer*.

Reshapes on a producer -> consumer path must keep the batch dimension and
flatten the rest in order (``nn.Flatten()``, ``x.flatten(1)``,
``torch.flatten(x, 1)``, ``x.view(x.size(0), -1)``, ``x.reshape(b, -1)`` with
``b = x.shape[0]``): only then is the consumer's input column of (unit i,
position s) provably ``i * spatial + s``. Any other reshape (e.g.
``h.reshape(-1, 26 * 26)``, which folds channels into the batch) raises
:class:`UnsupportedModelError`. Layers used functionally (``F.linear(h, self.w)``)
are invisible: a plugin that needs hidden units calls :func:`require_hidden_units`,
which refuses a model without any and says why each layer was skipped.

Activity capture (:class:`UnitRecorder`) uses forward pre-hooks on the
consumers, so the recorded activity of a unit is what the next layer reads
(after activation, pooling and flatten), reshaped to
``(batch, width_factor, n_units, spatial)``.
"""

from __future__ import annotations

import math
import operator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
import torch.fx as fx
from torch import nn

from ..argument_rules import check_real
from .activations import CReLU

WEIGHT_LAYERS = (nn.Linear, nn.Conv2d)

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
_NORM_MODULES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
# Modules that keep units separate (per-unit maps, pooling, reshapes).
_PASS_MODULES = (
    *_NORM_MODULES,
    *_ACTIVATION_MODULES,
    nn.Dropout,
    nn.Dropout2d,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.Flatten,
    nn.Identity,
)
_ACTIVATION_FUNCTIONS = {
    torch.relu,
    torch.tanh,
    torch.sigmoid,
    nn.functional.relu,
    nn.functional.leaky_relu,
    nn.functional.gelu,
    nn.functional.elu,
    nn.functional.silu,
}
_ACTIVATION_METHODS = {"relu", "tanh", "sigmoid"}
_PASS_FUNCTIONS = {
    *_ACTIVATION_FUNCTIONS,
    torch.flatten,
    nn.functional.dropout,
    nn.functional.max_pool2d,
    nn.functional.avg_pool2d,
    nn.functional.adaptive_avg_pool2d,
    nn.functional.adaptive_max_pool2d,
}
_PASS_METHODS = {*_ACTIVATION_METHODS, "view", "reshape", "flatten", "contiguous"}
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
        pre_activation: the module whose output is the units' pre-activation: the
            last of the producer and the normalisation modules met on the path
            before the first activation (the producer or its norm when the path
            has no activation). ``None`` only for units built by hand.
    """

    name: str
    producer: nn.Module
    consumer_name: str
    consumer: nn.Module
    activation: nn.Module | None = None
    norm: nn.Module | None = None
    width_factor: int = 1
    spatial: int = 1
    pre_activation: nn.Module | None = None

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
    skipped: dict[str, str] = field(default_factory=dict)  # layer -> why it has no hidden units

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
    tracer = _LeafTracer()
    try:
        graph = tracer.trace(model)
    except Exception as exc:  # fx raises many types for untraceable code
        raise UnsupportedModelError(
            f"cannot read the hidden units of {type(model).__name__}: torch.fx could not "
            f"trace its forward ({type(exc).__name__}: {exc}). Supported: this library's "
            "MLP, ConvNet and SlimResNet18, nn.Sequential stacks of Linear/Conv2d/"
            "activation/pooling/flatten/normalisation layers, and models whose forward "
            "is a traceable chain of such layers."
        ) from exc
    finally:
        # torch.fx's patcher leaves the tracer in a reference cycle (a closure of its
        # patched functions): holding the model there would keep it until a full collection
        tracer.root = None
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
    skipped: dict[str, str] = {}
    output_name = None
    for node in layer_nodes:
        producer = modules[node.target]
        if _reaches_output(node, modules):
            output_name = node.target
            continue
        unit = _follow(node, producer, modules)
        if isinstance(unit, HiddenUnits):
            hidden.append(unit)
        else:
            skipped[node.target] = unit
    return ModelUnits(hidden, {n: modules[n] for n in names}, output_name, skipped)


def _describe(node: fx.Node) -> str:
    if node.op == "call_module":
        return f"module {node.target!r}"
    if node.op == "call_function":
        return f"function {getattr(node.target, '__name__', node.target)}"
    if node.op == "call_method":
        return f"method .{node.target}()"
    return f"{node.op} {node.target}"


_RESHAPE_HINT = (
    "use nn.Flatten(), x.flatten(1), torch.flatten(x, 1) or x.view(x.size(0), -1), "
    "which keep the batch dimension and flatten the rest in order"
)


def _keeps_dim0(arg, src: fx.Node, modules: dict[str, nn.Module], memo: dict) -> bool:
    """``arg`` is ``t.size(0)`` / ``t.shape[0]`` of a tensor ``t`` whose dim 0 provably
    equals that of ``src`` (the tensor being reshaped)."""
    if not isinstance(arg, fx.Node):
        return False
    t = None
    if arg.op == "call_method" and arg.target == "size":
        dim = arg.args[1] if len(arg.args) > 1 else arg.kwargs.get("dim")
        t = arg.args[0] if dim == 0 else None
    elif arg.op == "call_function" and arg.target is operator.getitem and arg.args[1] == 0:
        whole = arg.args[0]
        if isinstance(whole, fx.Node) and (
            (whole.op == "call_function" and whole.target is getattr and whole.args[1] == "shape")
            or (whole.op == "call_method" and whole.target == "size" and len(whole.args) == 1)
        ):
            t = whole.args[0]
    return isinstance(t, fx.Node) and t in _same_dim0(src, modules, memo)


def _same_dim0(start: fx.Node, modules: dict[str, nn.Module], memo: dict) -> set:
    """``start`` and its ancestors with the same dim 0: back through weight layers,
    unit-preserving operations (reshapes only if they keep dim 0) and residual sums."""
    chain: set = set()
    stack = [start]
    while stack:
        n = stack.pop()
        if not isinstance(n, fx.Node) or n in chain:
            continue
        chain.add(n)
        if n.op == "call_module" and isinstance(modules[n.target], WEIGHT_LAYERS):
            stack.append(n.args[0])
        elif _passes(n, modules) and _reshape_problem(n, modules, memo) is None:
            stack.append(n.args[0])
        elif n.op == "call_function" and n.target in (operator.add, operator.iadd, torch.add):
            stack.extend(n.args[:2])
    return chain


def _reshape_problem(node: fx.Node, modules: dict[str, nn.Module], memo: dict) -> str | None:
    """Why the flatten/view/reshape ``node`` may not keep dim 0 and flatten the rest in
    order (``None`` if it provably does); other nodes give ``None``."""
    if node in memo:
        return memo[node]
    memo[node] = problem = _reshape_problem_uncached(node, modules, memo)
    return problem


def _reshape_problem_uncached(
    node: fx.Node, modules: dict[str, nn.Module], memo: dict
) -> str | None:
    if node.op == "call_module":
        m = modules[node.target]
        if isinstance(m, nn.Flatten) and (m.start_dim, m.end_dim) != (1, -1):
            return f"nn.Flatten(start_dim={m.start_dim}, end_dim={m.end_dim})"
        return None
    is_flatten = (node.op == "call_function" and node.target is torch.flatten) or (
        node.op == "call_method" and node.target == "flatten"
    )
    if is_flatten:
        a, kw = node.args, node.kwargs
        start = a[1] if len(a) > 1 else kw.get("start_dim", 0)
        end = a[2] if len(a) > 2 else kw.get("end_dim", -1)
        return None if (start, end) == (1, -1) else f"flatten(start_dim={start}, end_dim={end})"
    if node.op == "call_method" and node.target in ("view", "reshape"):
        shape = node.args[1:]
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        src = node.args[0]
        if not node.kwargs and len(shape) == 2 and _keeps_dim0(shape[0], src, modules, memo):
            return None
        shown = ", ".join(_describe(a) if isinstance(a, fx.Node) else repr(a) for a in shape)
        return (
            f".{node.target}({shown}), whose first size is not provably the batch size "
            "(x.size(0) or x.shape[0])"
        )
    return None


def unit_network(model: nn.Module) -> nn.Module:
    """The network whose hidden units ``model`` computes with: the ``main_network`` of a
    wrapper that exposes one (NeuMoSync's MainNetwork, whose layers the wrapper runs with
    modulated weights and activity), else ``model`` itself.

    Read-only diagnostics use it (``read_units(unit_network(model))``, forwards through
    ``model``); methods that change units call :func:`read_units` on the model they train.
    """
    inner = getattr(model, "main_network", None)
    return inner if isinstance(inner, nn.Module) else model


def _follow(node: fx.Node, producer: nn.Module, modules: dict[str, nn.Module]) -> HiddenUnits | str:
    """The hidden units of ``producer`` (at ``node``), or why it has none."""
    activation = norm = None
    pre_activation = producer
    seen_activation = False
    factor = 1
    cur = node
    reshape_problem = None
    memo: dict = {}
    while True:
        users = _consumers(cur)
        if len(users) != 1:
            return f"its output is used {len(users)} times (a branch or residual sum)"
        (u,) = users
        if u.op == "call_module" and isinstance(modules[u.target], WEIGHT_LAYERS):
            if u.args[0] is not cur:
                return f"its output reaches {u.target!r} other than as its input"
            if reshape_problem is not None:
                raise UnsupportedModelError(
                    f"{node.target} -> {u.target}: the path reshapes with {reshape_problem}, "
                    "so which input columns of the consumer each unit feeds cannot be "
                    f"proven (a reshape that folds channels into the batch mixes them); "
                    + _RESHAPE_HINT
                )
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
                node.target,
                producer,
                u.target,
                consumer,
                activation,
                norm,
                factor,
                spatial,
                pre_activation,
            )
        if not _passes(u, modules):
            hint = (
                " (a layer called functionally, e.g. F.linear(h, self.w), is invisible: "
                "use nn.Linear / nn.Conv2d modules)"
                if u.op == "call_function" and u.target in _FUNCTIONAL_LAYERS
                else ""
            )
            return (
                f"its output goes to {_describe(u)}, which is neither a unit-preserving "
                f"operation nor a Linear/Conv2d module{hint}"
            )
        if reshape_problem is None:
            reshape_problem = _reshape_problem(u, modules, memo)
        if u.op == "call_module":
            m = modules[u.target]
            if isinstance(m, _ACTIVATION_MODULES):
                activation = m
                factor *= getattr(m, "width_factor", 1)
                seen_activation = True
            elif isinstance(m, _NORM_MODULES):
                norm = m
                if not seen_activation:
                    pre_activation = m
        elif _is_functional_activation(u):
            seen_activation = True
        cur = u


def _is_functional_activation(node: fx.Node) -> bool:
    if node.op == "call_function":
        return node.target in _ACTIVATION_FUNCTIONS
    return node.op == "call_method" and node.target in _ACTIVATION_METHODS


_FUNCTIONAL_LAYERS = {
    nn.functional.linear,
    nn.functional.conv1d,
    nn.functional.conv2d,
    nn.functional.conv3d,
    torch.matmul,
    operator.matmul,
}


def hidden_units(model: nn.Module) -> list[HiddenUnits]:
    """The model's hidden units, one entry per producing layer, in forward order."""
    return read_units(model).hidden


def require_hidden_units(model: nn.Module, user: str) -> list[HiddenUnits]:
    """:func:`hidden_units` for a mechanism that acts on them (CBP, ReDo, ...): a model
    without any raises :class:`UnsupportedModelError` naming ``user`` and saying why each
    weight layer has none, instead of a plugin that silently never acts."""
    mu = read_units(model)
    if not mu.hidden:
        why = "; ".join(f"{n}: {r}" for n, r in mu.skipped.items()) or (
            "its only weight layer is the output layer"
        )
        raise UnsupportedModelError(
            f"{user}: {type(model).__name__} has no hidden units this library can read, so "
            f"{user} would never act ({why}). A hidden unit is an output of an nn.Linear/"
            "nn.Conv2d module read by exactly one next nn.Linear/nn.Conv2d module through "
            "activations, normalisation, pooling, dropout or flatten."
        )
    return mu.hidden


def unread_parameters(model: nn.Module, mu: ModelUnits | None = None) -> list[str]:
    """The trainable parameters of ``model`` outside the weight layers the helper reads
    (and their normalisation modules): an LSTM's weights, a ``Parameter`` used
    functionally (``F.linear(h, self.w)``). A method acting on the read layers would
    silently leave these out."""
    mu = read_units(model) if mu is None else mu
    read = {id(p) for m in mu.layers.values() for p in m.parameters()}
    for m in model.modules():
        if isinstance(m, _NORM_MODULES):
            read |= {id(p) for p in m.parameters()}
    return [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in read]


def require_readable(model: nn.Module, user: str, opt_in: str) -> ModelUnits:
    """:func:`read_units` for a method that acts on every weight layer (NeuMoSync, NGM-SGD's
    ``layers="all"``): a model with trainable parameters the helper cannot read raises
    :class:`UnsupportedModelError` naming them and what ``user`` would act on; ``opt_in``
    says how to accept acting on the read layers only."""
    mu = read_units(model)
    unread = unread_parameters(model, mu)
    if unread:
        shown = ", ".join(unread[:6]) + (f" and {len(unread) - 6} more" if len(unread) > 6 else "")
        raise UnsupportedModelError(
            f"{user}: {type(model).__name__} has trainable parameters outside the "
            f"nn.Linear/nn.Conv2d layers this library can read ({shown}), so {user} would "
            f"act on {', '.join(mu.layers)} only; {opt_in}"
        )
    return mu


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


_PAUSED = [0]  # depth of nested ``recording_paused()`` blocks


@contextmanager
def recording_paused() -> Iterator[None]:
    """Make every :class:`UnitRecorder` (except those with ``ignore_pause``) skip forwards.

    Metrics that run extra forward passes during training (the stability-gap
    tracker, transfer probes' evaluations, diagnostics) wrap them in this, so the
    activity statistics of the method's plugins (CBP, ReDo, ...) see training
    batches only and the main run is the same with and without the metrics.
    """
    _PAUSED[0] += 1
    try:
        yield
    finally:
        _PAUSED[0] -= 1


class _RecorderHook:
    """A consumer pre-hook as an object (not a closure), so ``copy.deepcopy`` of a model
    together with its plugins (a forked strategy) gives hooks that write into the
    copied recorder, not the original one."""

    def __init__(self, recorder: UnitRecorder, unit: HiddenUnits):
        self.recorder = recorder
        self.unit = unit

    def __call__(self, module: nn.Module, args: tuple) -> None:
        rec = self.recorder
        if rec.enabled and (_PAUSED[0] == 0 or rec.ignore_pause):
            h = args[0].detach() if rec.detach else args[0]
            rec.activity[self.unit.name] = self.unit.unit_activity(h)


class UnitRecorder:
    """Record hidden-unit activity during forward passes (forward pre-hooks on consumers).

    ``recorder.activity[name]`` holds the last batch's activity of the units of
    producer ``name`` as ``(batch, width_factor, n_units, positions)``. With
    ``detach=True`` (default) it holds no graph. Use as a context manager or call
    :meth:`remove`. Inside :func:`recording_paused` it records nothing unless
    ``ignore_pause``. The hooks are plain objects, so a deep copy of the model and
    the recorder together stays consistent.
    """

    def __init__(
        self,
        units: list[HiddenUnits],
        detach: bool = True,
        enabled: bool = True,
        ignore_pause: bool = False,
    ):
        self.units = units
        self.detach = detach
        self.enabled = enabled
        self.ignore_pause = ignore_pause
        self.activity: dict[str, torch.Tensor] = {}
        self._handles = [u.consumer.register_forward_pre_hook(self._hook(u)) for u in units]

    def _hook(self, unit: HiddenUnits) -> _RecorderHook:
        return _RecorderHook(self, unit)

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


# --- Re-initialising units (used by CBP and ReDo) --------------------------------------------


def default_init_bound(layer: nn.Module) -> float:
    """Bound of PyTorch's default ``Linear``/``Conv2d`` init ``U(-b, b)``: b = 1/sqrt(fan_in).

    ``reset_parameters`` draws weights with ``kaiming_uniform_(a=sqrt(5))``, whose
    bound is ``sqrt(6 / ((1 + 5) * fan_in)) = 1 / sqrt(fan_in)``, and biases from
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``: the same bound for both.
    """
    w = layer.weight
    fan_in = w[0].numel()
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


@torch.no_grad()
def reinit_units(
    hu: HiddenUnits,
    units: torch.Tensor,
    init: Callable[[torch.Tensor], None] | None = None,
    zero_outgoing: bool = True,
) -> None:
    """Give units ``units`` of ``hu`` fresh incoming weights and cut their outgoing ones.

    - producer rows (out-features / out-channels) ``units``: drawn from the
      layer's initial distribution. With ``init=None`` that is PyTorch's default
      for the layer type, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (see
      :func:`default_init_bound`); a callable ``init(rows)`` fills the
      ``(k, *weight.shape[1:])`` tensor of new rows in place instead (e.g. for a
      model initialised with ``N(0, 0.01^2)``). The producer's bias of those units is 0.
    - a normalisation layer between producer and activation (``hu.norm``) gets,
      for those units, its initial state: affine weight 1 and bias 0 and, for
      BatchNorm, running mean 0 and running variance 1 (a fresh unit's statistics
      are unrelated to the old unit's; ``num_batches_tracked`` is shared and kept).
    - consumer columns fed by the units (every CReLU copy and spatial position,
      :meth:`HiddenUnits.outgoing_index`) are set to 0 when ``zero_outgoing``.
    """
    units = torch.as_tensor(units, dtype=torch.long, device=hu.producer.weight.device).flatten()
    if units.numel() == 0:
        return
    w = hu.producer.weight
    rows = torch.empty((units.numel(), *w.shape[1:]), dtype=w.dtype, device=w.device)
    if init is None:
        b = default_init_bound(hu.producer)
        rows.uniform_(-b, b)
    else:
        init(rows)
    w.index_copy_(0, units, rows)
    if hu.producer.bias is not None:
        hu.producer.bias.index_fill_(0, units, 0.0)
    norm = hu.norm
    if norm is not None:
        weight = getattr(norm, "weight", None)
        bias = getattr(norm, "bias", None)
        if weight is not None and weight.dim() == 1 and weight.numel() == hu.n_units:
            weight.index_fill_(0, units, 1.0)
        if bias is not None and bias.dim() == 1 and bias.numel() == hu.n_units:
            bias.index_fill_(0, units, 0.0)
        if isinstance(norm, nn.modules.batchnorm._BatchNorm) and norm.running_mean is not None:
            norm.running_mean.index_fill_(0, units, 0.0)
            norm.running_var.index_fill_(0, units, 1.0)
    if zero_outgoing:
        hu.consumer.weight.index_fill_(
            1, hu.outgoing_index(units.cpu()).flatten().to(w.device), 0.0
        )


def redo_scores(activity) -> torch.Tensor:
    """ReDo scores ``s_i = E|h_i| / ((1/H) sum_k E|h_k|)`` of one layer's units (Sokar et al. 2023).

    ``activity`` is ``(batch, n_units)`` or :class:`UnitRecorder`'s ``(batch,
    width_factor, n_units, positions)`` (a tensor or array-like); expectations run
    over the batch, the positions and the CReLU copies. A layer whose units are all
    silent scores 0 everywhere.
    """
    if isinstance(activity, torch.Tensor):
        a = activity.detach().float().abs()
    else:
        a = torch.as_tensor(activity, dtype=torch.float32).abs()
    if a.dim() == 2:
        mean_abs = a.mean(dim=0)
    elif a.dim() == 4:
        mean_abs = a.mean(dim=(0, 1, 3))
    else:
        raise ValueError(
            "activity must be (batch, n_units) or (batch, width_factor, n_units, positions), "
            f"got shape {tuple(a.shape)}"
        )
    if a.shape[0] == 0 or mean_abs.numel() == 0:
        raise ValueError("activity is empty")
    return redo_scores_of_means(mean_abs)


def redo_scores_of_means(
    mean_abs: torch.Tensor, layers: torch.Tensor | None = None
) -> torch.Tensor:
    """ReDo scores ``s_i = m_i / mean_{k in layer(i)} m_k`` from each unit's ``m_i = E|h_i|``.

    ``mean_abs`` is ``(n,)``: one layer's units, or (with ``layers``, the ``(n, L)``
    one-hot matrix of each unit's layer) the units of several layers at once, each
    scored against its own layer in a few matrix products (NeuMoSync's neuron
    features score a whole network every step). A silent layer scores 0 everywhere.
    """
    tiny = torch.finfo(mean_abs.dtype).tiny
    if layers is None:
        return mean_abs / mean_abs.mean().clamp_min(tiny)
    layer_mean = layers @ ((mean_abs @ layers) / layers.sum(0))
    return mean_abs / layer_mean.clamp_min(tiny)


def dormant_mask(activity, tau: float = 0.1) -> torch.Tensor:
    """Boolean mask of the tau-dormant units (``s_i <= tau``)."""
    check_real("tau", tau, 0.0)
    return redo_scores(activity) <= tau


def dormant_fraction(activity, tau: float = 0.1) -> float:
    """Fraction of a layer's units that are tau-dormant."""
    return float(dormant_mask(activity, tau).float().mean())
