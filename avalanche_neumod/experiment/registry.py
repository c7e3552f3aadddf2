"""Methods, models, optimizers and streams by name.

Our own methods, models, Avalanche's strategies and torch's optimizers are imported
directly: :data:`METHODS` maps a name to the method's declaration
(:class:`~avalanche_neumod.training.method.Method`: ours are declared beside their code,
Avalanche's here), :data:`MODELS` and :data:`OPTIMIZERS` a name to the class (or
function) itself, so a suite's arguments are checked
against its signature when the suite loads (``argcheck``) and a renamed class
fails at import, not in a cell. A suite may also name a user's strategy, model
or stream generator by import path: anything containing ``":"`` is imported
when used (:func:`resolve`).

The three tables are built on first access (module ``__getattr__``, PEP 562):
importing this module loads neither torch nor Avalanche, so ``neumod --help``
and ``neumod list suites`` stay fast.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    import torch

    from ..training.method import Method


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


def import_path(obj: Any) -> str:
    """``"package.module:Name"`` of a class or function (what a cell's result records).

    Avalanche's strategies are recorded under their public namespace
    ``avalanche.training`` (as result files always have), ours under their module.
    """
    mod = obj.__module__
    if mod.startswith("avalanche.training."):
        public = importlib.import_module("avalanche.training")
        if getattr(public, obj.__name__, None) is obj:
            mod = "avalanche.training"
    path = f"{mod}:{obj.__qualname__}"
    return RECORDED_AS.get(path, path)


# --------------------------------------------------------------------------- methods

#: Classes moved since cells were stored, by import path -> the path those cells record as
#: their method's ``target``: what a cell records stays comparable with stored cells (so
#: ``neumod run --resume`` accepts them), and each recorded path still imports the class.
RECORDED_AS = {
    "avalanche_neumod.training.ngm.strategy:NGMSGD": "avalanche_neumod.training.ngm:NGMSGD",
}


def target(method: "Method") -> str:
    """The import path a cell's configuration records for ``method``'s strategy."""
    cls = method.strategy
    return cls if isinstance(cls, str) else import_path(cls)


def strategy_class(method: "Method") -> type:
    """``method``'s strategy class (a user's import path is imported here; RegistryError if
    it cannot be)."""
    return resolve(method.strategy) if isinstance(method.strategy, str) else method.strategy


# --------------------------------------------------------------------------- models


def _flat(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _flat_sizes(info: dict) -> dict:
    return {"input_size": _flat(info["input_shape"]), "num_classes": info["num_classes"]}


def _conv_sizes(info: dict) -> dict:
    shape = info["input_shape"]
    return {"in_channels": shape[0], "input_size": shape[-1], "num_classes": info["num_classes"]}


def _resnet_sizes(info: dict) -> dict:
    return {"in_channels": info["input_shape"][0], "num_classes": info["num_classes"]}


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: ``fn`` (a class or function) called with the sizes ``sizes(info)``
    takes from the stream's ``info`` and the suite's arguments: ``spec(info, **args)``."""

    fn: Callable[..., Any]
    sizes: Callable[[dict], dict]
    doc: str = ""

    def __call__(self, info: dict, **kwargs) -> Any:
        return self.fn(**self.sizes(info), **kwargs)

    @property
    def supplied(self) -> frozenset[str]:
        """The arguments taken from the stream (not the suite's to give)."""
        return frozenset(self.sizes({"input_shape": (1, 1, 1), "num_classes": 1}))


# --------------------------------------------------------------------------- the tables

METHODS: dict[str, "Method"]
MODELS: dict[str, ModelSpec]
OPTIMIZERS: dict[str, type]


@functools.lru_cache(maxsize=None)
def _tables() -> dict[str, dict]:
    """The name -> class tables (imports torch, Avalanche and our strategies)."""
    import torch
    from avalanche.training import EWC, GEM, LwF, Naive, Replay, SynapticIntelligence

    from .. import training
    from ..models import MLP, ConvNet, SlimResNet18, ngm_mlp
    from ..training.method import Method

    def avalanche(name: str, cls: type, args: Optional[dict] = None, tunable=(), doc=""):
        return Method(name, cls, args=dict(args or {}), tunable=tunable, doc=doc, kind="avalanche")

    # Avalanche's own strategies (avalanche-lib 0.6.0), on the same data path as ours; then
    # ours, each declared beside its code (``avalanche_neumod.training.METHODS``).
    declared = [
        avalanche("Naive", Naive, doc="Avalanche fine-tuning"),
        avalanche("EWC", EWC, {"ewc_lambda": 100.0}, ("ewc_lambda",), "Avalanche EWC"),
        avalanche("Replay", Replay, {"mem_size": 200}, ("mem_size",), "Avalanche replay"),
        avalanche(
            "SI",
            SynapticIntelligence,
            {"si_lambda": 1.0},
            ("si_lambda",),
            "Avalanche Synaptic Intelligence",
        ),
        avalanche(
            "LwF",
            LwF,
            {"alpha": 1.0, "temperature": 2.0},
            ("alpha", "temperature"),
            "Avalanche Learning without Forgetting",
        ),
        avalanche(
            "GEM",
            GEM,
            {"patterns_per_exp": 64, "memory_strength": 0.5},
            ("patterns_per_exp", "memory_strength"),
            "Avalanche GEM",
        ),
        *training.METHODS,
    ]
    methods = {m.name: m for m in declared}
    models = {
        "mlp": ModelSpec(MLP, _flat_sizes, "fully connected network"),
        "convnet": ModelSpec(ConvNet, _conv_sizes, "small convolutional network"),
        "slim_resnet18": ModelSpec(SlimResNet18, _resnet_sizes, "slim ResNet-18"),
        # The NGM study's MLP: N(0, 0.01^2) / N(0, 0.05^2) init, untrained zero biases.
        "ngm_mlp": ModelSpec(ngm_mlp, _flat_sizes, "the NGM study's MLP"),
    }
    optimizers = {
        "sgd": torch.optim.SGD,
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
        "rmsprop": torch.optim.RMSprop,
    }
    return {"METHODS": methods, "MODELS": models, "OPTIMIZERS": optimizers}


def __getattr__(name: str) -> Any:  # PEP 562: the tables load on first use
    if name in ("METHODS", "MODELS", "OPTIMIZERS"):
        return _tables()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- look-ups


def method_spec(name: str) -> "Method":
    """The declaration of a registered method, or of a user's strategy class by import path
    (default optimizer, every constructor argument tunable)."""
    methods = _tables()["METHODS"]
    if name in methods:
        return methods[name]
    if ":" in name:
        from ..training.method import Method  # start-up: ``training`` loads torch

        return Method(name, name, tunable=None, kind="user")
    raise unknown("method", name, methods)


def check_method_name(name: str) -> None:
    method_spec(name)


def builds_own_optimizer(cfg: dict) -> bool:
    """Whether the cell ``cfg`` (``suite.expand``'s, or a stored cell's configuration) trains
    with its strategy's own optimizer: its method declares ``OWNS_OPTIMIZER`` and the cell
    kept it (its optimizer config is ``{"name": "own"}``, what such cells record). A method
    that does not own its optimizer never does; a name no longer registered reads as not."""
    try:
        spec = method_spec(str((cfg.get("method") or {}).get("name", "")))
    except RegistryError:
        return False
    return spec.owns_optimizer and (cfg.get("optimizer") or {}).get("name") == spec.optimizer


def model_receiver(name: str) -> tuple[Callable[..., Any], frozenset[str]]:
    """What receives a model's suite ``args``, and the arguments it gets from the stream:
    a registered model's class/function, or a user's ``fn`` by import path (``info`` is
    supplied when it is its first parameter)."""
    models = _tables()["MODELS"]
    if name in models:
        return models[name].fn, models[name].supplied
    if ":" in name:
        return resolve(name), frozenset({"info"})
    raise unknown("model", name, models)


def build_model(name: str, info: dict, args: Optional[dict] = None) -> "torch.nn.Module":
    """A model by registry name (sized from the stream's ``info``) or import path.

    An import-path model is called as ``fn(info, **args)`` when its first
    parameter is named ``info``, else as ``fn(**args)``.
    """
    args = dict(args or {})
    models = _tables()["MODELS"]
    if name in models:
        return models[name](info, **args)
    if ":" in name:
        fn = resolve(name)
        params = list(inspect.signature(fn).parameters)
        return fn(info, **args) if params and params[0] == "info" else fn(**args)
    raise unknown("model", name, models)


def build_optimizer(cfg: dict, params) -> "torch.optim.Optimizer":
    """``{"name": "sgd", "lr": 0.01, ...}`` -> a torch optimizer over the trainable ``params``
    (a method that owns its optimizer builds it itself: :func:`builds_own_optimizer`)."""
    cfg = dict(cfg)
    name = cfg.pop("name", "sgd")
    optimizers = _tables()["OPTIMIZERS"]
    if name not in optimizers:
        raise unknown("optimizer", name, optimizers)
    if "lr" in cfg:
        from .._checks import check_real

        check_real("optimizer lr", cfg["lr"], 0.0, low_open=True)
    return optimizers[name]([p for p in params if p.requires_grad], **cfg)


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
