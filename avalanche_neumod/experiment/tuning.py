"""Per-method hyperparameter tuning on seeds disjoint from the reported ones (issue 12).

A suite declares what to tune and how to choose::

    tune:                                  # top level
      seeds: [100, 101]                    # tuning seeds: never among the reported `seeds`
      target: {metric: avg_accuracy, mode: max}
      per: stream                          # a choice per (stream, method); or `suite`
    methods:
      CBP: {tune: {lr: [0.003, 0.01, 0.03], rho: [1.0e-5, 1.0e-4]}}

A grid key is ``lr`` (the optimizer's learning rate; for a method whose optimizer is
its mechanism, NGM-SGD, its ``lr`` argument), ``optimizer.<name>`` (any optimizer
setting) or one of the method's constructor arguments. The grid is the Cartesian
product of the lists, in the declared order.

``neumod run`` runs every grid point on every tuning seed first (cells
``tune__<stream>__<method>__<point>__seed<s>``, through the same launcher and into
the same run folder, so ``--resume`` skips the finished ones), scores each point by
the mean of the target over its tuning seeds (and over the streams with
``per: suite``; a point with a diverged or failed cell scores worst), picks the best
(ties: the first in grid order), writes the choices to ``<run>/tuning.json`` and runs
the reported seeds with the picked settings (their ``config.tuned`` records the point).
"""

from __future__ import annotations

import copy
import inspect
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from . import registry
from .results import load_cell, write_json_atomic
from .suite import Suite, SuiteError, cell_id, check_keys, expand

TUNE_KEYS = {"seeds", "target", "per"}
TARGET_DEFAULT = {"metric": "avg_accuracy", "mode": "max"}
MODES = ("max", "min")
PER = ("stream", "suite")
TUNING_FILE = "tuning.json"


class TuningError(SuiteError):
    """A tuning grid or its results that cannot be used (the message says which)."""


def settings(tune: Optional[dict]) -> dict:
    """The top-level ``tune`` mapping with its defaults filled in."""
    tune = dict(tune or {})
    target = {**TARGET_DEFAULT, **(tune.get("target") or {})}
    return {
        "seeds": [int(s) for s in tune.get("seeds") or []],
        "target": target,
        "per": tune.get("per", "stream"),
    }


def method_grids(methods: dict) -> dict[str, dict[str, list]]:
    """Method key -> its grid (axis name -> values), for the methods that declare one."""
    return {k: dict((m or {})["tune"]) for k, m in methods.items() if (m or {}).get("tune")}


def points(grid: dict[str, list]) -> list[dict]:
    """The grid's points (Cartesian product in the declared order)."""
    keys = list(grid)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]


def point_label(point: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())


def point_id(point: dict) -> str:
    return "_".join(f"{k}{v}" for k, v in point.items())


def _arg_names(method_name: str) -> Optional[set[str]]:
    """The method's explicit constructor arguments, or None when they cannot be read."""
    try:
        cls = registry.resolve(registry.method_spec(method_name).target)
        params = inspect.signature(cls.__init__).parameters
    except Exception:  # noqa: BLE001 - checked again when the cell runs
        return None
    return {
        n
        for n, p in params.items()
        if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


def validate(suite: Suite) -> None:
    """Check the tuning settings and every grid: tuning seeds disjoint from the reported
    seeds, a known target mode, non-empty value lists, known argument names."""
    where = f"suite {suite.name!r} (preset {suite.preset!r})"
    raw = suite.tune or {}
    check_keys(raw, TUNE_KEYS, f"{where}: tune", TuningError)
    s = settings(raw)
    if s["target"]["mode"] not in MODES:
        raise TuningError(f"{where}: tune.target.mode must be one of {MODES}, got {s['target']}")
    if not isinstance(s["target"]["metric"], str) or not s["target"]["metric"]:
        raise TuningError(f"{where}: tune.target.metric must be a metric name")
    if s["per"] not in PER:
        raise TuningError(f"{where}: tune.per must be one of {PER}, got {s['per']!r}")
    overlap = sorted(set(s["seeds"]) & set(suite.seeds))
    if overlap:
        raise TuningError(
            f"{where}: tuning seeds {overlap} are also reported seeds; tuning seeds must be "
            f"disjoint from the reported seeds {suite.seeds}"
        )
    grids = method_grids(suite.methods)
    if grids and not s["seeds"]:
        raise TuningError(
            f"{where}: methods {', '.join(grids)} declare a tune grid but the suite has no "
            "`tune: {seeds: [...]}` (tuning seeds disjoint from the reported seeds)"
        )
    for mk, grid in grids.items():
        if not isinstance(grid, dict):
            raise TuningError(f"{where}: method {mk!r}: tune must be a mapping of lists")
        name = (suite.methods[mk] or {}).get("name", mk)
        names = _arg_names(name)
        for k, vals in grid.items():
            if not isinstance(vals, list) or not vals:
                raise TuningError(
                    f"{where}: method {mk!r}: tune.{k} must be a non-empty list, got {vals!r}"
                )
            if k == "lr" or k.startswith("optimizer."):
                if k == "lr" and any(not (isinstance(v, (int, float)) and v > 0) for v in vals):
                    raise TuningError(f"{where}: method {mk!r}: tune.lr values must be > 0")
                continue
            if names is not None and k not in names:
                raise TuningError(
                    f"{where}: method {mk!r}: unknown tune key {k!r}; valid keys: lr, "
                    f"optimizer.<setting>, {', '.join(sorted(names - {'model', 'optimizer'}))}"
                )


def apply(cfg: dict, point: dict) -> dict:
    """``cfg`` with the grid point's settings applied (a copy)."""
    cfg = copy.deepcopy(cfg)
    own = cfg["optimizer"].get("name") == registry.OWN_OPTIMIZER
    for k, v in point.items():
        if k == "lr":  # a mechanism optimizer (NGM-SGD) takes its lr as an argument
            (cfg["method"]["args"] if own else cfg["optimizer"])["lr"] = v
        elif k.startswith("optimizer."):
            cfg["optimizer"][k.split(".", 1)[1]] = v
        else:
            cfg["method"]["args"][k] = v
    return cfg


def tuning_cells(
    suite: Suite,
    methods: Optional[Iterable[str]] = None,
    streams: Optional[Iterable[str]] = None,
) -> list[dict]:
    """Every grid point of every tuned method on every tuning seed (and stream)."""
    grids = method_grids(suite.methods)
    keys = [m for m in (list(methods) if methods is not None else suite.methods) if m in grids]
    if not keys:
        return []
    s = settings(suite.tune)
    out = []
    for cfg in expand(suite, seeds=s["seeds"], methods=keys, streams=streams):
        for i, pt in enumerate(points(grids[cfg["method_key"]])):
            c = apply(cfg, pt)
            c["cell_id"] = "tune__" + cell_id(
                cfg["stream_key"], f"{cfg['method_key']}__{point_id(pt)}", cfg["seed"]
            )
            c["tuning"] = {"point": pt, "index": i}
            out.append(c)
    return out


def target_value(result: dict, metric: str) -> float:
    """The target read from a result: ``metrics.<metric>``, else a dotted path from the
    result's root (e.g. ``measures.transfer.LCA_F``); NaN when absent or not ok."""
    if result is None or result.get("status") != "ok":
        return math.nan
    node: Any = result.get("metrics", {})
    path = metric.split(".")
    if path[0] not in node:
        node = result
    try:
        for p in path:
            node = node[int(p)] if isinstance(node, list) else node[p]
        return float(node)
    except (KeyError, IndexError, TypeError, ValueError):
        return math.nan


@dataclass
class Choice:
    """The picked grid point of one (stream, method) pair (stream ``"*"``: ``per: suite``)."""

    stream: str
    method: str
    grid: dict
    point: dict
    score: float
    scores: list[float] = field(default_factory=list)  # per grid point, in grid order
    n_cells: list[int] = field(default_factory=list)  # finished cells per grid point

    def as_dict(self) -> dict:
        return {
            "stream": self.stream,
            "method": self.method,
            "grid": self.grid,
            "point": self.point,
            "score": self.score,
            "scores": self.scores,
            "n_cells": self.n_cells,
        }


def select(tune: dict, grids: dict, results: list[dict]) -> dict[tuple[str, str], Choice]:
    """Pick each pair's best grid point from its tuning results.

    The score of a point is the mean of the target over its cells; a point any of whose
    cells did not finish "ok" (or lacks the target) scores NaN and is never picked.
    """
    s = settings(tune)
    metric, mode = s["target"]["metric"], s["target"]["mode"]
    by_pair: dict[tuple[str, str], list[tuple[dict, float]]] = {}
    for r in results:
        cfg = r["config"]
        t = cfg.get("tuning")
        if not t:
            continue
        pair = (cfg["stream_key"] if s["per"] == "stream" else "*", cfg["method_key"])
        by_pair.setdefault(pair, []).append((t["point"], target_value(r, metric)))
    out: dict[tuple[str, str], Choice] = {}
    for (sk, mk), found in by_pair.items():
        grid = grids[mk]
        pts = points(grid)
        # matched by the point itself (dict equality ignores key order), not by its index:
        # a grid read back from JSON may list its axes in another order
        per_point = {i: [v for p, v in found if p == pt] for i, pt in enumerate(pts)}
        scores = []
        for i in range(len(pts)):
            vals = per_point.get(i, [])
            ok = vals and all(math.isfinite(v) for v in vals)
            scores.append(sum(vals) / len(vals) if ok else math.nan)
        finite = [(i, v) for i, v in enumerate(scores) if math.isfinite(v)]
        if not finite:
            raise TuningError(
                f"tuning {mk!r} on {sk!r}: no grid point has a finished score for "
                f"{metric!r} (every point diverged, failed or lacks the metric)"
            )
        sign = 1.0 if mode == "max" else -1.0
        best = max(finite, key=lambda iv: (sign * iv[1], -iv[0]))[0]
        out[(sk, mk)] = Choice(
            sk,
            mk,
            grid,
            pts[best],
            scores[best],
            scores,
            [len(per_point.get(i, [])) for i in range(len(pts))],
        )
    return out


def choice_for(choices: dict, stream: str, method: str) -> Optional[Choice]:
    return choices.get((stream, method)) or choices.get(("*", method))


def reported_cells(
    suite: Suite,
    choices: dict,
    seeds: Optional[Iterable[int]] = None,
    methods: Optional[Iterable[str]] = None,
    streams: Optional[Iterable[str]] = None,
) -> list[dict]:
    """The reported cells with each tuned method's picked settings applied."""
    out = []
    for cfg in expand(suite, seeds=seeds, methods=methods, streams=streams):
        ch = choice_for(choices, cfg["stream_key"], cfg["method_key"])
        if ch is not None:
            cfg = apply(cfg, ch.point)
            cfg["tuned"] = {"point": ch.point}
        out.append(cfg)
    return out


def tune_then_expand(
    suite: Suite,
    out: str,
    run_cells: Callable[[list[dict]], Any],
    seeds: Optional[Iterable[int]] = None,
    methods: Optional[Iterable[str]] = None,
    streams: Optional[Iterable[str]] = None,
) -> Optional[list[dict]]:
    """Run the tuning cells with ``run_cells`` (the launcher), pick, and return the
    reported cells with the picks applied; None when the suite tunes nothing."""
    tcells = tuning_cells(suite, methods=methods, streams=streams)
    if not tcells:
        return None
    run_cells(tcells)
    results = [load_cell(out, c["cell_id"]) for c in tcells]
    missing = [c["cell_id"] for c, r in zip(tcells, results) if r is None]
    if missing:
        raise TuningError(f"tuning cells without a result in {out}: {', '.join(missing[:5])}")
    choices = select(suite.tune, method_grids(suite.methods), results)
    write_json_atomic(
        Path(out) / TUNING_FILE,
        {"settings": settings(suite.tune), "choices": [c.as_dict() for c in choices.values()]},
    )
    return reported_cells(suite, choices, seeds=seeds, methods=methods, streams=streams)
