"""Suites of experiments: YAML suites, cells, result files and launchers (``neumod run``)."""

from .cell import run_cell, run_cell_to_file
from .launch import LaunchError, RunSummary, run_suite
from .registry import METHODS, MODELS, MethodSpec, RegistryError
from .results import SCHEMA_VERSION, load_results, write_json_atomic
from .suite import Suite, SuiteError, expand, load_suite

__all__ = [
    "METHODS",
    "MODELS",
    "LaunchError",
    "MethodSpec",
    "RegistryError",
    "RunSummary",
    "SCHEMA_VERSION",
    "Suite",
    "SuiteError",
    "expand",
    "load_results",
    "load_suite",
    "run_cell",
    "run_cell_to_file",
    "run_suite",
    "write_json_atomic",
]
