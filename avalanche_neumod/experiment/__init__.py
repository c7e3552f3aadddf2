"""Suites of experiments: YAML suites, cells, result files and launchers (``neumod run``).

The names below are imported on first use (module ``__getattr__``, PEP 562), so
``from avalanche_neumod.experiment import suite`` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "run_cell": "cell",
    "run_cell_to_file": "cell",
    "LaunchError": "launch",
    "RunSummary": "launch",
    "run_suite": "launch",
    "METHODS": "registry",
    "MODELS": "registry",
    "RegistryError": "registry",
    "SCHEMA_VERSION": "results",
    "load_results": "results",
    "write_json_atomic": "results",
    "Suite": "suite",
    "SuiteError": "suite",
    "expand": "suite",
    "load_suite": "suite",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
