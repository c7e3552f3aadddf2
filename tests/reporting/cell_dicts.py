"""Saved-cell mappings for the reporting tests (one place that knows the cell schema's
shape): :func:`cell_dict` is what ``neumod run`` writes, reduced to what reports read."""

from __future__ import annotations

from typing import Optional

from avalanche_neumod.records import SCHEMA_VERSION


def cell_dict(
    stream: str,
    method: str,
    seed: int,
    *,
    status: str = "ok",
    name: Optional[str] = None,
    args: Optional[dict] = None,
    acc: float = 0.5,
    metrics: Optional[dict] = None,
    measures: Optional[dict] = None,
    optimizer: Optional[dict] = None,
) -> dict:
    """A cell of ``method`` (registry ``name``, default the key) on ``stream``: accuracy
    ``acc`` (avg and final), ``metrics`` on top, empty metrics unless ``status`` is ok."""
    m = {"avg_accuracy": acc, "avg_final_accuracy": acc, "n_iterations": 10}
    m.update(metrics or {})
    config = {
        "stream_key": stream,
        "method_key": method,
        "seed": seed,
        "method": {"name": name or method, "args": args or {}},
    }
    if optimizer is not None:
        config["optimizer"] = optimizer
    return {
        "schema_version": SCHEMA_VERSION,
        "cell_id": f"{stream}__{method}__seed{seed}",
        "status": status,
        "config": config,
        "metrics": m if status == "ok" else {},
        "measures": measures or {},
        "timings": {"total_s": 1.0, "train_s": [0.5], "eval_s": [0.1]},
        "curves": {},
    }
