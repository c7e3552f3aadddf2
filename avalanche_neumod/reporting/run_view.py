"""Saved cell results grouped by (stream, method), with seed statistics.

Everything in ``reporting`` reads saved results only (the JSON files of
``neumod run``) as :class:`~avalanche_neumod.records.CellResult` records (an older
schema migrated on reading): this module groups them, keeps the suite's stream and
method order, and reduces a per-seed stored scalar to mean and std over the seeds whose
cell finished ("ok"). Diverged and failed seeds are counted, never averaged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from ..records import CellResult
from . import stats


def num(x: Any) -> float:
    """A stored number as float (``None`` and the strings "nan"/"inf" included)."""
    if x is None:
        return math.nan
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


@dataclass
class Stat:
    """A scalar over seeds: mean, std (numpy's, ddof=0) and the 95% t-interval
    (:func:`.stats.t_interval`) of the finished seeds."""

    values: list[float]
    n_seeds: int
    n_diverged: int = 0
    n_failed: int = 0
    n_collapsed: int = 0  # NGM cells whose gains saturated: like diverged, never averaged

    @property
    def mean(self) -> float:
        v = [x for x in self.values if math.isfinite(x)]
        return float(np.mean(v)) if v else math.nan

    @property
    def std(self) -> float:
        v = [x for x in self.values if math.isfinite(x)]
        return float(np.std(v)) if v else math.nan

    @property
    def ci(self) -> "stats.Interval":
        return stats.t_interval(self.values)

    def fmt(
        self, scale: float = 100.0, digits: int = 2, std: bool = True, spread: str = "ci"
    ) -> str:
        """``mean ± h`` scaled (h: half-width of the 95% t-interval over seeds; ``(n=1)``
        for one seed; ``spread="std"``: ``mean (std)``), with the seeds that diverged or
        failed flagged; ``std=False``: the mean alone."""
        if not any(math.isfinite(x) for x in self.values):
            if self.n_diverged:
                return f"diverged ({self.n_diverged}/{self.n_seeds})"
            if self.n_collapsed:
                return f"collapsed ({self.n_collapsed}/{self.n_seeds})"
            if self.n_failed:
                return f"failed ({self.n_failed}/{self.n_seeds})"
            return "n/a"
        s = f"{self.mean * scale:.{digits}f}"
        if std and spread == "std":
            s += f" ({self.std * scale:.{digits}f})"
        elif std:
            iv = self.ci
            s += f" ± {iv.half * scale:.{digits}f}" if math.isfinite(iv.lo) else f" (n={iv.n})"
        flags = []
        if self.n_diverged:
            flags.append(f"{self.n_diverged}/{self.n_seeds} diverged")
        if self.n_collapsed:
            flags.append(f"{self.n_collapsed}/{self.n_seeds} collapsed")
        if self.n_failed:
            flags.append(f"{self.n_failed}/{self.n_seeds} failed")
        return s + (f" [{', '.join(flags)}]" if flags else "")


@dataclass
class Group:
    """The cells of one (stream, method) pair, one per seed."""

    stream: str
    method: str
    cells: list[CellResult] = field(default_factory=list)

    @property
    def ok(self) -> list[CellResult]:
        return [c for c in self.cells if c.ok]

    @property
    def method_name(self) -> str:
        return self.cells[0].config["method"]["name"]

    @property
    def method_args(self) -> dict:
        return self.cells[0].config["method"].get("args", {})

    def by_seed(self, get: Callable[[CellResult], Any]) -> dict[int, float]:
        """Seed -> value of the finished cells (NaN where ``get`` finds nothing)."""
        return {c.seed: _read(get, c) for c in self.ok}

    def stat(self, get: Callable[[CellResult], Any]) -> Stat:
        st = [c.status for c in self.cells]
        return Stat(
            [_read(get, c) for c in self.ok],
            n_seeds=len(self.cells),
            n_diverged=st.count("diverged"),
            n_failed=st.count("failed"),
            n_collapsed=st.count("collapsed"),
        )


def _read(get: Callable[[CellResult], Any], c: CellResult) -> float:
    """``get(c)`` as float; NaN where the cell has no such stored field."""
    try:
        return num(get(c))
    except (KeyError, IndexError, TypeError, AttributeError):
        return math.nan


class View:
    """Results by stream and method, in the suite's order (saved dicts are read as
    :class:`~avalanche_neumod.records.CellResult` records)."""

    def __init__(self, results: Sequence[Union[dict, CellResult]], manifest: Optional[dict] = None):
        recs = [r if isinstance(r, CellResult) else CellResult.from_dict(r) for r in results]
        # tuning cells are kept apart: they are not the reported seeds
        self.tuning = [r for r in recs if r.config.get("tuning")]
        results = [r for r in recs if not r.config.get("tuning")]
        self.results = results
        self.manifest = manifest or {}
        self.lock: Optional[dict] = None  # the run folder's lock holder, when read
        suite = self.manifest.get("suite") or {}
        s_order = list(suite.get("stream_order") or suite.get("streams") or {})
        m_order = list(suite.get("method_order") or suite.get("methods") or {})
        self.groups: dict[tuple[str, str], Group] = {}
        for r in results:
            key = (r.config["stream_key"], r.config["method_key"])
            self.groups.setdefault(key, Group(*key)).cells.append(r)
        for g in self.groups.values():
            g.cells.sort(key=lambda c: c.seed)
        seen_s = {k[0] for k in self.groups}
        seen_m = {k[1] for k in self.groups}
        self.streams = [s for s in s_order if s in seen_s] + sorted(seen_s - set(s_order))
        self.methods = [m for m in m_order if m in seen_m] + sorted(seen_m - set(m_order))
        self.labels = {}
        for r in results:
            self.labels.setdefault(r.config["stream_key"], r.config.get("stream_label"))

    def group(self, stream: str, method: str) -> Optional[Group]:
        return self.groups.get((stream, method))

    def methods_of(self, stream: str) -> list[str]:
        return [m for m in self.methods if (stream, m) in self.groups]

    def stream_label(self, stream: str) -> str:
        return self.labels.get(stream) or stream

    def info(self, stream: str) -> dict:
        for m in self.methods_of(stream):
            for c in self.groups[(stream, m)].cells:
                if c.stream_info:
                    return c.stream_info
        return {}

    def has(self, pred: Callable[[CellResult], bool]) -> bool:
        return any(r.ok and pred(r) for r in self.results)
