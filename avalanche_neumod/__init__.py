"""avalanche-neumod: neuromodulation-inspired continual learning for Avalanche.

Subpackages: ``models`` (networks, hidden units, gains, NeuMoSync network),
``training`` (strategies, plugins, the fast path), ``benchmarks`` (datasets and
streams), ``evaluation`` (metrics), ``experiment`` and ``reporting`` (suites and
reports), ``cli`` (``neumod``).

The public names below are imported on first use (module ``__getattr__``,
PEP 562): ``import avalanche_neumod`` loads neither torch nor Avalanche, and
``from avalanche_neumod import NeuMoSync`` imports what that name needs.

Importing it checks, from the installed package metadata only, that avalanche-lib is in
the tested range (:data:`AVALANCHE_REQUIREMENT`, also declared in ``pyproject.toml``):
``FastTemplate`` relies on Avalanche internals that change between minor versions.
"""

from __future__ import annotations

import importlib
import re
from importlib import metadata
from typing import Any, Optional

__version__ = "0.1.0"

# the avalanche-lib versions tested: (major, minor) from AVALANCHE_MIN up to, not including,
# AVALANCHE_BELOW
AVALANCHE_MIN = (0, 6)
AVALANCHE_BELOW = (0, 7)
AVALANCHE_REQUIREMENT = (
    f"avalanche-lib>={AVALANCHE_MIN[0]}.{AVALANCHE_MIN[1]},"
    f"<{AVALANCHE_BELOW[0]}.{AVALANCHE_BELOW[1]}"
)


def check_avalanche(version: Optional[str]) -> None:
    """Raise ImportError, naming the supported range, unless ``version`` (of avalanche-lib,
    None when it is not installed) is in it."""
    found = re.match(r"(\d+)\.(\d+)", version or "")
    if found and AVALANCHE_MIN <= (int(found[1]), int(found[2])) < AVALANCHE_BELOW:
        return
    what = f"avalanche-lib {version} is installed" if version else "avalanche-lib is not installed"
    raise ImportError(
        f"avalanche-neumod {__version__} supports {AVALANCHE_REQUIREMENT} (FastTemplate relies "
        f"on its internals), but {what}: pip install '{AVALANCHE_REQUIREMENT}'"
    )


def _installed_avalanche() -> Optional[str]:
    try:
        return metadata.version("avalanche-lib")
    except metadata.PackageNotFoundError:
        return None


check_avalanche(_installed_avalanche())

# public name -> the subpackage that defines it
_EXPORTS: dict[str, str] = {
    "ExperienceTensors": "benchmarks",
    "get_stream": "benchmarks",
    "tensor_benchmark": "benchmarks",
    "MLP": "models",
    "ConvNet": "models",
    "SlimResNet18": "models",
    "hidden_units": "models",
    "CBP": "training",
    "MAML": "training",
    "NGMSGD": "training",
    "FastDataPlugin": "training",
    "FastNaive": "training",
    "FastTemplate": "training",
    "L2Init": "training",
    "L2InitEWC": "training",
    "NeuMoSync": "training",
    "ReDo": "training",
    "ShrinkPerturb": "training",
}
_SUBPACKAGES = ("benchmarks", "cli", "evaluation", "experiment", "models", "reporting", "training")

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(_SUBPACKAGES))
