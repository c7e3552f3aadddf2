"""Per-method hyperparameter tuning on seeds disjoint from the reported ones.

A suite declares what to tune and how to choose::

    tune:                                  # top level
      seeds: [100, 101]                    # tuning seeds: never among the reported `seeds`
      target: {metric: avg_accuracy, mode: max}
      per: stream                          # a choice per (stream, method); or `suite`
      grid: {lr: [0.001, 0.003, 0.01, 0.03, 0.1]}   # axes shared by every method
      keep: 3                              # successive halving: the top 3 points of the
                                           # first seed also run on the other seeds
      extend: 2                            # extensions per axis when a choice is on an edge
    methods:
      CBP: {tune: {rho: [1.0e-5, 1.0e-4, 1.0e-3]}}   # the method's own axes

A grid key is ``lr`` (the optimizer's learning rate; for a method whose optimizer is
its mechanism, NGM-SGD, its ``lr`` argument), ``optimizer.<name>`` (any optimizer
setting) or one of the method's constructor arguments. A method's grid is the suite's
shared axes (``tune.grid``, one grid for every method: it replaces a method's own axis of
the same name, so a preset can impose it) followed by its own axes, and its points are
their Cartesian product, in that order.

The procedure, for every (stream, method) pair (``per: suite``: every method, a point
scored by the mean over the streams):

1. every point of the grid runs on the first tuning seed;
2. the ``keep`` best of them (all points when ``keep`` is absent) run on the other tuning
   seeds too; a kept point's score is the mean target over all tuning seeds, and the pick
   is the best kept point (ties: the first in grid order). A point with a diverged or
   failed cell scores NaN and is never picked, and so does a point whose cell misses the
   suite's ``require`` rule (``{metric, min, streams}``: e.g. on the memorisation streams
   at least 95 % on task 1 right after training on it, ``accuracy_matrix.0.0``; a point
   that does not fit the first task measures under-training, not plasticity);
3. when the pick sits on the first or last value of an extendable axis (positive values,
   increasing, each at least 1.5x the one before: a log-spaced axis), the axis gets the
   next value outward (the log-step of its last two steps) and steps 1-3 run again on the
   larger grid (finished cells are reused), at most ``extend`` times per axis. A pick left
   on an edge (axis not extendable, extension budget spent) is recorded as such.

Every decision reads the tuning seeds only. :func:`select` replays the procedure from the
stored results (so ``--resume`` recomputes the same choice) and :func:`next_cells` says
which cells it still needs. :class:`TuningRounds` hands them to the launcher as rounds:
the launcher (``launch.run_suite``) runs a round, gives back the results, and asks for the
next round until none is left (cells ``tune__<stream>__<method>__<point>__seed<s>``,
``config.tuning = {point, index}``); it then writes the choices to ``<run>/tuning.json``
and runs the reported seeds with the picked settings (their ``config.tuned`` records the
point). This module plans and never runs a cell; the ``tune`` block's keys, defaults and
checks are the suite format's (``suite.tune_settings``, ``suite.validate_tune``).
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from . import registry
from .suite import Suite, TuningError, cell_id, expand, method_grids, tune_settings

TUNING_FILE = "tuning.json"
MIN_LOG_STEP = 1.5  # consecutive values at least this ratio apart: a log-spaced axis
MAX_ROUNDS = 100  # a safety bound: each round adds cells, the procedure is finite


def _grid_of(tune: Optional[dict], grids: dict, method: str) -> dict[str, list]:
    """The full grid of ``method``: the shared axes first, then ``grids[method]``'s."""
    shared = tune_settings(tune)["grid"]
    return {**shared, **{a: v for a, v in (grids.get(method) or {}).items() if a not in shared}}


def points(grid: dict[str, list]) -> list[dict]:
    """The grid's points (Cartesian product in the declared order)."""
    keys = list(grid)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]


def point_label(point: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())


def point_id(point: dict) -> str:
    return "_".join(f"{k}{v}" for k, v in point.items())


def _key(point: dict) -> tuple:
    return tuple(sorted(point.items()))


def extendable(values: list) -> bool:
    """Whether an axis can grow outward: positive numbers, increasing, log-spaced."""
    if len(values) < 2 or any(
        isinstance(v, bool) or not isinstance(v, (int, float)) for v in values
    ):
        return False
    return all(v > 0 for v in values) and all(
        b >= MIN_LOG_STEP * a for a, b in zip(values, values[1:])
    )


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def step_out(values: list, side: int) -> float:
    """The next value beyond the top (``side`` +1) or bottom (-1) of a log-spaced axis:
    the edge's neighbour times the ratio spanned by the last two steps (continues both a
    geometric axis and a 1-3-10 one: after 0.01, 0.03, 0.1 comes 0.3, then 1)."""
    v = list(values) if side > 0 else [1.0 / x for x in reversed(values)]
    nxt = v[-2] * (v[-1] / v[-3]) if len(v) >= 3 else v[-1] * v[-1] / v[-2]
    return _round(nxt if side > 0 else 1.0 / nxt)


def reachable(values: list, extend: int) -> list:
    """The axis's values after up to ``extend`` extensions on each side."""
    vals = list(values)
    if not extendable(vals):
        return vals
    for _ in range(int(extend)):
        vals = [step_out(vals, -1)] + vals + [step_out(vals, +1)]
    return vals


def apply(cfg: dict, point: dict) -> dict:
    """``cfg`` with the grid point's settings applied (a copy)."""
    cfg = copy.deepcopy(cfg)
    own = registry.builds_own_optimizer(cfg)
    for k, v in point.items():
        if k == "lr":  # a method that owns its optimizer (NGM-SGD) takes its lr as an argument
            (cfg["method"]["args"] if own else cfg["optimizer"])["lr"] = v
        elif k.startswith("optimizer."):
            cfg["optimizer"][k.split(".", 1)[1]] = v
        else:
            cfg["method"]["args"][k] = v
    return cfg


def make_cell(base: dict, point: dict, index: int) -> dict:
    """The tuning cell of ``point`` (its position ``index`` in the grid) from the expanded
    cell ``base`` of its stream, method and tuning seed."""
    c = apply(base, point)
    c["cell_id"] = "tune__" + cell_id(
        base["stream_key"], f"{base['method_key']}__{point_id(point)}", base["seed"]
    )
    c["tuning"] = {"point": point, "index": index}
    return c


def tuning_cells(
    suite: Suite,
    methods: Optional[Iterable[str]] = None,
    streams: Optional[Iterable[str]] = None,
) -> list[dict]:
    """The first round's cells: every point of every tuned method's declared grid on the
    first tuning seed (on every tuning seed when the suite sets no ``keep``), on every
    stream. Later rounds (the kept points on the other seeds, extended grids) depend on
    these results: :func:`next_cells`."""
    grids = method_grids(suite.methods, suite.tune)
    keys = [m for m in (list(methods) if methods is not None else suite.methods) if m in grids]
    if not keys:
        return []
    s = tune_settings(suite.tune)
    seeds = s["seeds"] if s["keep"] is None else s["seeds"][:1]
    out = []
    for cfg in expand(suite, seeds=seeds, methods=keys, streams=streams):
        for i, pt in enumerate(points(grids[cfg["method_key"]])):
            out.append(make_cell(cfg, pt, i))
    return out


def in_grid_order(suite: Suite, method: str, point: dict) -> dict:
    """``point`` with its axes in the grid's declared order (the order its cell id is
    written in): a stored configuration's point comes back with its keys sorted."""
    grid = method_grids(suite.methods, suite.tune).get(method) or {}
    return {**{k: point[k] for k in grid if k in point}, **point}


def admissible(suite: Suite, method: str, point: dict) -> bool:
    """Whether ``point`` can be one of ``method``'s grid points under this suite's tuning
    (its declared grid, extended at most ``extend`` times per axis)."""
    grid = method_grids(suite.methods, suite.tune).get(method)
    if not grid or set(point) != set(grid):
        return False
    ext = tune_settings(suite.tune)["extend"] or 0
    return all(point[k] in reachable(v, ext) for k, v in grid.items())


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
    """The picked grid point of one (stream, method) pair (stream ``"*"``: ``per: suite``).

    ``grid`` is the final grid (after extensions), ``scores`` the mean over the tuning
    seeds per point in its order (NaN: not kept, diverged or failed), ``per_seed`` each
    tuning seed's score per point (None: not run on that seed), ``kept`` the indices that
    ran on every seed, ``extensions`` the values added (``{axis, value, round}``) and
    ``edges`` the axes on whose first or last value the pick still sits."""

    stream: str
    method: str
    grid: dict
    point: dict
    score: float
    scores: list[float] = field(default_factory=list)  # per grid point, in grid order
    n_cells: list[int] = field(default_factory=list)  # finished cells per grid point
    seeds: list[int] = field(default_factory=list)
    per_seed: dict = field(default_factory=dict)  # seed -> [score or None per point]
    kept: list[int] = field(default_factory=list)
    base_grid: dict = field(default_factory=dict)
    extensions: list[dict] = field(default_factory=list)
    edges: list[str] = field(default_factory=list)

    @property
    def extended(self) -> bool:
        return bool(self.extensions)

    def as_dict(self) -> dict:
        return {
            "stream": self.stream,
            "method": self.method,
            "grid": self.grid,
            "point": self.point,
            "score": self.score,
            "scores": self.scores,
            "n_cells": self.n_cells,
            "seeds": self.seeds,
            "per_seed": {str(k): v for k, v in self.per_seed.items()},
            "kept": self.kept,
            "base_grid": self.base_grid,
            "extensions": self.extensions,
            "edges": self.edges,
        }


Score = Callable[[dict, int], Optional[float]]  # (point, seed) -> value; None: not run


def _replay(
    s: dict, grid0: dict, score: Score, where: str
) -> tuple[Optional[dict], list[tuple[dict, int, int]]]:
    """The procedure of the module docstring on one pair: ``(record, [])`` once every cell
    it needs has a score, else ``(None, [(point, index, seed), ...])`` still to run."""
    seeds, keep, extend = s["seeds"], s["keep"], int(s["extend"] or 0)
    sign = 1.0 if s["target"]["mode"] == "max" else -1.0
    grid = {k: list(v) for k, v in grid0.items()}
    used = {k: 0 for k in grid}
    extensions: list[dict] = []
    rnd = 0
    while True:
        pts = points(grid)
        first = seeds[0]
        need = [(p, i, first) for i, p in enumerate(pts) if score(p, first) is None]
        if need:
            return None, need
        a = [score(p, first) for p in pts]
        ranked = sorted(
            (i for i, v in enumerate(a) if math.isfinite(v)), key=lambda i: (-sign * a[i], i)
        )
        kept = list(range(len(pts))) if keep is None else sorted(ranked[:keep])
        need = [(pts[i], i, sd) for i in kept for sd in seeds[1:] if score(pts[i], sd) is None]
        if need:
            return None, need
        per_seed = {
            sd: [score(p, sd) if (sd == first or i in kept) else None for i, p in enumerate(pts)]
            for sd in seeds
        }
        scores = []
        for i in range(len(pts)):
            vals = [per_seed[sd][i] for sd in seeds]
            ok = i in kept and all(v is not None and math.isfinite(v) for v in vals)
            scores.append(sum(vals) / len(vals) if ok else math.nan)
        finite = [i for i, v in enumerate(scores) if math.isfinite(v)]
        if not finite:
            raise TuningError(
                f"tuning {where}: no grid point has a finished score for "
                f"{s['target']['metric']!r} (every point diverged, failed, lacks the metric"
                + (f" or misses tune.require {s['require']}" if s.get("require") else "")
                + ")"
            )
        best = min(finite, key=lambda i: (-sign * scores[i], i))
        pick = pts[best]
        grown, edges = False, []
        for k, vals in grid.items():
            if len(vals) < 2 or pick[k] not in (vals[0], vals[-1]):
                continue
            side = 1 if pick[k] == vals[-1] else -1
            if not extendable(vals) or used[k] >= extend:
                edges.append(k)
                continue
            new = step_out(vals, side)
            grid[k] = vals + [new] if side > 0 else [new] + vals
            used[k] += 1
            extensions.append({"axis": k, "value": new, "round": rnd + 1})
            grown = True
        if not grown:
            return {
                "grid": grid,
                "point": pick,
                "score": scores[best],
                "scores": scores,
                "n_cells": [
                    sum(per_seed[sd][i] is not None for sd in seeds) for i in range(len(pts))
                ],
                "seeds": list(seeds),
                "per_seed": per_seed,
                "kept": kept,
                "base_grid": {k: list(v) for k, v in grid0.items()},
                "extensions": extensions,
                "edges": edges,
            }, []
        rnd += 1


def _scorers(tune: dict, results: list[dict]) -> dict[tuple[str, str], dict]:
    """(stream or "*", method) -> {(point key, seed): [target per stream cell]}."""
    s = tune_settings(tune)
    metric = s["target"]["metric"]
    found: dict[tuple[str, str], dict] = {}
    for r in results:
        cfg = r["config"]
        t = cfg.get("tuning")
        if not t:
            continue
        pair = (cfg["stream_key"] if s["per"] == "stream" else "*", cfg["method_key"])
        cell = found.setdefault(pair, {}).setdefault((_key(t["point"]), _seed(cfg)), {})
        cell[cfg["stream_key"]] = (
            target_value(r, metric) if meets_requirement(s["require"], r) else math.nan
        )
    return found


def meets_requirement(require: Optional[dict], result: dict) -> bool:
    """Whether a tuning result passes the suite's ``tune.require`` rule (True without one,
    or on a stream the rule does not name); a diverged or failed cell passes here (it
    scores NaN anyway)."""
    if not require or result.get("status") != "ok":
        return True
    streams = require.get("streams")
    if streams is not None and result["config"]["stream_key"] not in streams:
        return True
    value = target_value(result, require["metric"])
    return math.isfinite(value) and value >= float(require["min"])


def _seed(cfg: dict) -> Optional[int]:
    return None if cfg.get("seed") is None else int(cfg["seed"])


def _score_fn(cells: dict, streams: Optional[list[str]]) -> Score:
    def score(point: dict, seed: int) -> Optional[float]:
        by_stream = cells.get((_key(point), seed))
        if not by_stream or (streams is not None and any(x not in by_stream for x in streams)):
            return None
        vals = [by_stream[x] for x in (streams or by_stream)]
        return sum(vals) / len(vals) if all(math.isfinite(v) for v in vals) else math.nan

    return score


def select(
    tune: dict, grids: dict, results: list[dict], streams: Optional[list[str]] = None
) -> dict[tuple[str, str], Choice]:
    """Each pair's pick, replayed from its tuning results (module docstring). ``grids``:
    method -> its own axes (the shared ``tune.grid`` is added); ``streams``: the streams a
    ``per: suite`` score averages (default: those found). A pair whose procedure still
    needs cells is left out; :func:`next_cells` names them."""
    s = tune_settings(tune)
    if not s["seeds"]:
        found = {_seed(r["config"]) for r in results if r["config"].get("tuning")}
        s["seeds"] = sorted(found, key=lambda x: (x is None, x or 0))
    out: dict[tuple[str, str], Choice] = {}
    for (sk, mk), cells in _scorers(tune, results).items():
        where = f"{mk!r} on {sk!r}"
        on = streams if sk == "*" else None
        rec, _ = _replay(s, _grid_of(tune, grids, mk), _score_fn(cells, on), where)
        if rec is not None:
            out[(sk, mk)] = Choice(sk, mk, **rec)
    return out


def next_cells(
    suite: Suite,
    results: list[dict],
    methods: Optional[Iterable[str]] = None,
    streams: Optional[Iterable[str]] = None,
) -> list[dict]:
    """The tuning cells the procedure needs next, given the finished ``results``."""
    grids = method_grids(suite.methods, suite.tune)
    keys = [m for m in (list(methods) if methods is not None else suite.methods) if m in grids]
    if not keys:
        return []
    s = tune_settings(suite.tune)
    bases = {
        (c["stream_key"], c["method_key"], int(c["seed"])): c
        for c in expand(suite, seeds=s["seeds"], methods=keys, streams=streams)
    }
    skeys = sorted({k[0] for k in bases}, key=list(suite.streams).index)
    found = _scorers(suite.tune, results)
    pairs = (
        [(x, m) for m in keys for x in skeys] if s["per"] == "stream" else [("*", m) for m in keys]
    )
    out, seen = [], set()
    for sk, mk in pairs:
        on = skeys if sk == "*" else [sk]
        score = _score_fn(found.get((sk, mk), {}), on)
        _, need = _replay(s, grids[mk], score, f"{mk!r} on {sk!r}")
        for point, index, seed in need:
            for x in on:
                by_stream = found.get((sk, mk), {}).get((_key(point), seed), {})
                if x in by_stream:
                    continue
                c = make_cell(bases[(x, mk, seed)], point, index)
                if c["cell_id"] not in seen:
                    seen.add(c["cell_id"])
                    out.append(c)
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


class TuningRounds:
    """The procedure as rounds of cells for a launcher to run (it never runs one itself).

    ``first_round()`` is the declared grids' cells; after a round has run, the launcher
    passes every tuning result so far to ``next_round(results)``, which replays the
    procedure from them and returns the cells it still needs (empty: every pair has its
    pick). Stored results replay the same way, so a resumed run plans the same rounds.
    Then ``choices(results)`` picks, ``record(choices)`` is what ``tuning.json`` holds and
    ``reported_cells(choices)`` the reported seeds' cells with the picks applied.
    ``methods`` and ``streams`` restrict the pairs tuned (a run of part of a suite).
    """

    def __init__(
        self,
        suite: Suite,
        methods: Optional[Iterable[str]] = None,
        streams: Optional[Iterable[str]] = None,
    ):
        self.suite = suite
        self.methods = None if methods is None else list(methods)
        self.streams = None if streams is None else list(streams)
        self.rounds = 0

    def first_round(self) -> list[dict]:
        """The first round's cells (:func:`tuning_cells`); empty when nothing is tuned."""
        self.rounds = 1
        return tuning_cells(self.suite, methods=self.methods, streams=self.streams)

    def next_round(self, results: list[dict]) -> list[dict]:
        """The cells the procedure needs after ``results`` (every tuning result so far)."""
        cells = next_cells(self.suite, results, methods=self.methods, streams=self.streams)
        if cells:
            self.rounds += 1
            if self.rounds > MAX_ROUNDS:  # pragma: no cover - far above any extension budget
                raise TuningError(f"tuning did not settle in {MAX_ROUNDS} rounds")
        return cells

    def choices(self, results: list[dict]) -> dict[tuple[str, str], Choice]:
        """Each pair's pick from the finished procedure's ``results`` (:func:`select`); a
        ``per: suite`` score averages the streams the results cover."""
        grids = {k: (m or {}).get("tune") or {} for k, m in self.suite.methods.items()}
        order = list(self.suite.streams)
        skeys = sorted({r["config"]["stream_key"] for r in results}, key=order.index)
        return select(self.suite.tune, grids, results, streams=skeys)

    def record(self, choices: dict[tuple[str, str], Choice]) -> dict:
        """The content of ``<run>/tuning.json``: the settings and every pair's choice."""
        return {
            "settings": tune_settings(self.suite.tune),
            "choices": [c.as_dict() for c in choices.values()],
        }

    def reported_cells(
        self, choices: dict[tuple[str, str], Choice], seeds: Optional[Iterable[int]] = None
    ) -> list[dict]:
        """The reported cells with the picks applied (:func:`reported_cells`)."""
        return reported_cells(
            self.suite, choices, seeds=seeds, methods=self.methods, streams=self.streams
        )
