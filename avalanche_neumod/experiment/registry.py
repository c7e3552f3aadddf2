"""Methods, models, optimizers and streams by name, resolved lazily.

Every entry is an import path string (``"package.module:Name"``) resolved only
when a cell uses it, so an entry whose code is absent fails only when used, with
a message naming it. A suite may also name its own strategy or stream generator
by import path: anything containing ``":"`` is imported as is.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch


class RegistryError(ValueError):
    """An unknown name, or a name whose code cannot be imported."""


def resolve(path: str) -> Any:
    """The object at ``"package.module:Attr.sub"``."""
    if ":" not in path:
        raise RegistryError(f"not an import path (expected 'package.module:Name'): {path!r}")
    mod_name, _, attr = path.partition(":")
    try:
        obj = importlib.import_module(mod_name)
    except ImportError as e:
        raise RegistryError(f"cannot import {mod_name!r} for {path!r}: {e}") from e
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as e:
            raise RegistryError(f"{mod_name!r} has no attribute {attr!r} (for {path!r})") from e
    return obj


def unknown(kind: str, name: str, valid) -> RegistryError:
    """The error for an unknown ``kind`` name, listing the valid ones."""
    return RegistryError(
        f"unknown {kind} {name!r}; valid {kind}s: {', '.join(sorted(valid))}"
        + ("" if kind in ("suite", "preset") else " (or an import path 'package.module:Name')")
    )


# --------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class MethodSpec:
    """A strategy by import path, with its default arguments and optimizer.

    ``kind`` is ``"avalanche"`` for Avalanche's own strategies (they get our
    ``FastDataPlugin`` unless the suite says ``fast_data: false``) and ``"ours"``
    for this library's. ``optimizer`` is the default optimizer config (see
    :func:`build_optimizer`), or ``None`` for a strategy that builds its own
    (then only the method's own ``optimizer:`` entry in a suite replaces it);
    ``model_args`` an optional model-argument override.
    """

    target: str
    kind: str = "ours"
    args: dict = field(default_factory=dict)
    optimizer: Optional[dict] = field(default_factory=lambda: {"name": "sgd", "lr": 0.01})
    model_args: dict = field(default_factory=dict)
    doc: str = ""


_T = "avalanche_neumod.training"
_S = f"{_T}.strategies"

METHODS: dict[str, MethodSpec] = {
    # Avalanche's own strategies (avalanche-lib 0.6.0), on the same data path as ours.
    "Naive": MethodSpec("avalanche.training:Naive", "avalanche", doc="Avalanche fine-tuning"),
    "EWC": MethodSpec(
        "avalanche.training:EWC", "avalanche", {"ewc_lambda": 100.0}, doc="Avalanche EWC"
    ),
    "Replay": MethodSpec(
        "avalanche.training:Replay", "avalanche", {"mem_size": 200}, doc="Avalanche replay"
    ),
    "SI": MethodSpec(
        "avalanche.training:SynapticIntelligence",
        "avalanche",
        {"si_lambda": 1.0},
        doc="Avalanche Synaptic Intelligence",
    ),
    "LwF": MethodSpec(
        "avalanche.training:LwF",
        "avalanche",
        {"alpha": 1.0, "temperature": 2.0},
        doc="Avalanche Learning without Forgetting",
    ),
    "GEM": MethodSpec(
        "avalanche.training:GEM",
        "avalanche",
        {"patterns_per_exp": 64, "memory_strength": 0.5},
        doc="Avalanche GEM",
    ),
    # Ours.
    "FastNaive": MethodSpec(f"{_T}.template:FastNaive", doc="fine-tuning on our fast path"),
    "NeuMoSync": MethodSpec(
        f"{_T}.neumosync:NeuMoSync",
        optimizer=None,  # Adam(lr) over theta, the neuron embeddings and NeuroSync (DESIGN 6)
        doc="NeuMoSync (DESIGN 6)",
    ),
    "NGMSGD": MethodSpec(
        f"{_T}.ngm:NGMSGD",
        args={"eta": 0.3, "lr": 0.01},
        optimizer=None,  # the authors' SGD (momentum on ungained layers), built by NGMSGD
        doc="NGM-SGD gain modulation (DESIGN 4)",
    ),
    "CBP": MethodSpec(f"{_S}:CBP", doc="Continual Backprop (DESIGN 5.1)"),
    "ReDo": MethodSpec(f"{_S}:ReDo", doc="recycling dormant neurons (DESIGN 5.2)"),
    "CReLU": MethodSpec(f"{_S}:CReLU", doc="CReLU network (DESIGN 5.4)"),
    "L2Init": MethodSpec(f"{_S}:L2Init", doc="L2 regularisation towards init (DESIGN 5.3)"),
    "L2InitEWC": MethodSpec(
        f"{_S}:L2InitEWC", args={"ewc_lambda": 100.0}, doc="L2Init + EWC (DESIGN 5.5)"
    ),
    "ShrinkPerturb": MethodSpec(f"{_S}:ShrinkPerturb", doc="Shrink & Perturb (DESIGN 5.6)"),
    "MAML": MethodSpec(f"{_T}.maml:MAML", doc="MAML (DESIGN 5.7)"),
}


def method_spec(name: str) -> MethodSpec:
    """The spec of a registered method, or of a user's strategy class by import path."""
    if name in METHODS:
        return METHODS[name]
    if ":" in name:
        return MethodSpec(name, kind="user")
    raise unknown("method", name, METHODS)


def check_method_name(name: str) -> None:
    method_spec(name)


# --------------------------------------------------------------------------- models


def _flat(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _mlp(info: dict, **kw):
    from ..models import MLP

    return MLP(input_size=_flat(info["input_shape"]), num_classes=info["num_classes"], **kw)


def _convnet(info: dict, **kw):
    from ..models import ConvNet

    c, h = info["input_shape"][0], info["input_shape"][-1]
    return ConvNet(in_channels=c, input_size=h, num_classes=info["num_classes"], **kw)


def _resnet(info: dict, **kw):
    from ..models import SlimResNet18

    return SlimResNet18(in_channels=info["input_shape"][0], num_classes=info["num_classes"], **kw)


def _ngm_mlp(info: dict, **kw):
    fn = resolve("avalanche_neumod.models.ngm_mlp:ngm_mlp")
    return fn(input_size=_flat(info["input_shape"]), num_classes=info["num_classes"], **kw)


MODELS: dict[str, Callable] = {
    "mlp": _mlp,
    "convnet": _convnet,
    "slim_resnet18": _resnet,
    # The NGM study's MLP: N(0, 0.01^2) / N(0, 0.05^2) init, untrained zero biases (DESIGN 4).
    "ngm_mlp": _ngm_mlp,
}


def build_model(name: str, info: dict, args: Optional[dict] = None) -> torch.nn.Module:
    """A model by registry name (sized from the stream's ``info``) or import path.

    An import-path model is called as ``fn(info, **args)`` when its first
    parameter is named ``info``, else as ``fn(**args)``.
    """
    args = dict(args or {})
    if name in MODELS:
        return MODELS[name](info, **args)
    if ":" in name:
        fn = resolve(name)
        params = list(inspect.signature(fn).parameters)
        return fn(info, **args) if params and params[0] == "info" else fn(**args)
    raise unknown("model", name, MODELS)


# --------------------------------------------------------------------------- optimizers

OWN_OPTIMIZER = "own"  # the strategy builds its optimizer itself

OPTIMIZERS: dict[str, Callable] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
}


def build_optimizer(cfg: dict, params) -> Optional[torch.optim.Optimizer]:
    """``{"name": "sgd", "lr": 0.01, ...}`` -> a torch optimizer over the trainable ``params``;
    ``{"name": "own"}`` -> None (the strategy builds its own)."""
    cfg = dict(cfg)
    name = cfg.pop("name", "sgd")
    if name == OWN_OPTIMIZER:
        return None
    if name not in OPTIMIZERS:
        raise unknown("optimizer", name, OPTIMIZERS)
    if "lr" in cfg and not cfg["lr"] > 0:
        raise ValueError(f"optimizer lr must be > 0, got {cfg['lr']}")
    return OPTIMIZERS[name]([p for p in params if p.requires_grad], **cfg)


# --------------------------------------------------------------------------- streams


def stream_names() -> list[str]:
    """The registered stream generators (from ``avalanche_neumod.benchmarks.STREAMS``)."""
    try:
        from .. import benchmarks

        return sorted(getattr(benchmarks, "STREAMS", {}))
    except ImportError:  # pragma: no cover - the package always imports
        return []


def stream_factory(name: str) -> Callable:
    """The stream generator for a registered name or an import path."""
    if ":" in name:
        return resolve(name)
    from .. import benchmarks

    streams = getattr(benchmarks, "STREAMS", {})
    if name not in streams:
        raise unknown("stream", name, streams)
    fn = streams[name]
    return resolve(fn) if isinstance(fn, str) else fn


def check_stream_name(name: str) -> None:
    if ":" in name:
        return
    names = stream_names()
    if name not in names:
        raise unknown("stream", name, names)


WRAPPERS = ("recurring", "joint")


def wrapper_factory(name: str) -> Callable:
    """A stream wrapper (``recurring``, ``joint`` from ``avalanche_neumod.benchmarks``, or an
    import path): a function ``bm -> bm``, called as ``fn(bm, **args)``."""
    if ":" in name:
        return resolve(name)
    if name not in WRAPPERS:
        raise unknown("stream wrapper", name, WRAPPERS)
    from .. import benchmarks

    fn = getattr(benchmarks, name, None)
    if fn is None:
        raise RegistryError(
            f"stream wrapper {name!r} is not available in avalanche_neumod.benchmarks"
        )
    return fn


def wrap_stream(bm, wrappers) -> Any:
    """Apply ``wrappers`` (a list of names or ``{"name", "args"}`` mappings) in order."""
    for w in wrappers or []:
        name, args = (w, {}) if isinstance(w, str) else (w["name"], dict(w.get("args") or {}))
        bm = wrapper_factory(name)(bm, **args)
    return bm


def build_stream(name: str, args: dict, seed: int, root: Optional[str] = None, wrappers=None):
    """Call the generator with ``args``, passing ``seed`` and ``root`` when it takes them
    (and the suite did not fix them), then apply the ``wrappers``."""
    fn = stream_factory(name)
    args = dict(args)
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        params = {}
    takes_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if "seed" not in args and ("seed" in params or takes_kw):
        args["seed"] = seed
    if root is not None and "root" not in args and ("root" in params or takes_kw):
        args["root"] = root
    return wrap_stream(fn(**args), wrappers)
