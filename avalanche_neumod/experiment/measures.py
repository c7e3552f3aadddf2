"""The suite's optional metrics: from a name in ``metrics:`` to plugins and saved JSON.

Accuracy is always recorded (``cell.py``). Each optional measure here builds the
evaluation library's plugin(s) for a cell, and after training turns what they
measured into JSON (curves, arrays and the scalars of DESIGN 7):

- ``stability_gap``: the stability-gap tracker (DESIGN 7.2);
- ``transfer``: the knowledge-transfer probes, LCA/FKT/BKT (DESIGN 7.1);
- ``plasticity``: plasticity diagnostics per experience (DESIGN 7.3);
- ``history``: what the method itself records over time (NGM gains, NeuMoSync alphas).

The plugin classes are resolved lazily, so a measure whose code is absent fails
only in the cells that ask for it, with a message naming it.
"""

from __future__ import annotations

from typing import Any

from . import registry


class Measure:
    """One optional measure of a cell."""

    name = ""

    def __init__(self, args: dict, bm, info: dict, cfg: dict):
        self.args = dict(args or {})
        self.bm = bm
        self.info = info
        self.cfg = cfg

    def metrics(self) -> list:
        """``PluginMetric`` objects for the cell's ``EvaluationPlugin``."""
        return []

    def plugins(self) -> list:
        """``SupervisedPlugin`` objects for the strategy."""
        return []

    def attach(self, strategy) -> None:
        """Called once the strategy exists."""

    def collect(self, strategy, result: dict) -> dict:
        """The JSON-ready record of what was measured."""
        return {}


def _history_of(obj: Any) -> dict:
    out = {}
    for attr in ("gain_history", "alpha_history"):
        h = getattr(obj, attr, None)
        if h is None:
            continue
        h = h() if callable(h) else h
        if h:
            out[attr.replace("_history", "s")] = h
    return out


class History(Measure):
    """What the method records about itself over time (NGM gains, NeuMoSync alphas)."""

    name = "history"

    def collect(self, strategy, result: dict) -> dict:
        out = _history_of(strategy)
        for p in getattr(strategy, "plugins", []):
            for k, v in _history_of(p).items():
                out.setdefault(k, v)
        return out


MEASURES: dict[str, type[Measure]] = {"history": History}


def build(metrics_cfg: dict, bm, info: dict, cfg: dict) -> list[Measure]:
    """The measures a cell's ``metrics:`` mapping asks for (unknown names list the valid)."""
    out = []
    for name, args in (metrics_cfg or {}).items():
        if name not in MEASURES:
            raise registry.unknown("metric", name, MEASURES)
        out.append(MEASURES[name](args or {}, bm, info, cfg))
    return out
