"""Stability gap: per-iteration accuracy curves and their scores (docs/metrics.md).

Data model (plain, JSON-friendly): ``curves = {exp_id: (x, acc)}`` where ``x`` is
the number of updates done when the point was taken (strictly increasing) and
``acc`` the accuracy in [0, 1] on that experience's fixed test subset;
``boundaries[k]`` is the number of updates done when training experience ``k``
started (``len(boundaries)`` = experiences trained so far). Experience ``k``'s
training spans ``boundaries[k] <= x <= end_k`` with ``end_k = boundaries[k+1]``
(``+inf`` for the last one); the point at ``x = boundaries[k]`` is the state
before its first update (= the end of experience ``k-1``).

Pure scores (De Lange et al. ICLR 2023 unless said; NGM-SGD's by ``convention="ngm"``):

- ``min_acc(k)`` = mean over tracked ``i < k`` of ``min A_i(x)`` for
  ``end_i < x <= end_k`` (after ``i`` was learned); ``avg_min_acc`` = ``min_acc(T-1)``.
- ``wc_acc(k)`` = ``(1/n) A_k(end_k) + (1 - 1/n) min_acc(k)``, ``n = k + 1``
  experiences seen (De Lange's 1-based ``k``).
- ``stability_gap(k)`` (NGM-SGD's SG_k) = mean over tracked ``i < k`` of
  ``(A_i(end_{k-1}) - min_{boundaries[k] <= x <= end_k} A_i(x)) / A_i(end_{k-1})``
  (``relative=False``: not divided); ``avg_stability_gap`` = mean over ``k = 1..T-1``.
- ``recovery_iterations(k)``: updates from the (first) minimum during ``k`` until
  ``A_i >= A_i(end_{k-1}) - tolerance`` within experience ``k`` (``inf``: never).
- ``windowed_forgetting(w)`` / ``windowed_plasticity(w)``: per curve, the largest
  ``A[p] - A[q]`` (``A[q] - A[p]``) over ``p < q <= p + w - 1`` (``w`` consecutive
  evaluations; 0 if none is positive), averaged over curves.
- ``convention="ngm"`` (NGM-SGD's code, one tracked curve ``exp``, default the
  smallest id): block ``k`` = the curve's points with ``boundaries[k] < x <= end_k``;
  ``avg_acc`` = mean of block-final accuracies; ``avg_min_acc`` = mean of block
  minima over blocks ``0..T-2``; ``wc_acc = (1/T) final_{T-1} + (1 - 1/T) avg_min_acc``;
  ``SG_k = (ref - min(block k)) / ref`` with ``ref = A(end_{k-1})`` (the last point of
  block ``k-1``), exactly the authors' formula: negative when accuracy only rises
  after the switch, NaN when ``ref = 0`` (``relative=False``: ``ref - min``, never
  clamped); ``avg_SG`` = the plain mean of SG_k (NaN if one is NaN).
- ``convention="ngm_clamped"``: the NGM blocks with each gap clamped at 0 and a zero
  reference scored 0 (what ``"ngm"`` gave before it followed the authors' formula).

Repeated tasks (``benchmarks.recurring``: R, A1, R, A2, ...): curves are keyed by the
*task* (its test experience, listed once), and ``tasks[k]`` names the task trained in
experience ``k`` (default ``tasks[k] = k``: no repeats). With ``f(i)`` = the first
experience training task ``i`` and ``old(k)`` = the tracked tasks trained before
experience ``k`` other than ``tasks[k]`` (``old(k) = {i < k}`` without repeats):
min-ACC_k, SG_k and recovery_k average over ``old(k)``; min-ACC's window for ``i`` is
``end_{f(i)} < x <= end_k`` (after ``i`` was first learned, its own later retraining
included); WC-ACC_k's current term is ``A_{tasks[k]}(end_k)`` and ``n`` = distinct tasks
trained in experiences ``0..k``; NGM blocks are training experiences and the tracked
curve's blocks start at ``f(exp)``. Without repeats all of these are the definitions
above.
"""

from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence, Union

import numpy as np
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

from ..argument_rules import check_integer, check_real, checked, integer
from ..observer import Observer
from .renamed import resolve
from .subset_eval import ForwardFn, SubsetEvaluator, experience_subsets
from .task_identity import TaskIndex

CONVENTIONS = ("delange", "ngm", "ngm_clamped")
NGM_CONVENTIONS = ("ngm", "ngm_clamped")
CurveLike = Union[tuple, list, Mapping]
CurvesLike = Mapping


# --------------------------------------------------------------------------- pure functions


def _curve(c: CurveLike) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(c, Mapping):
        x, a = c["x"], c["acc"]
    else:
        x, a = c
    x = np.asarray(x, dtype=float)
    a = np.asarray(a, dtype=float)
    if x.ndim != 1 or x.shape != a.shape:
        raise ValueError(f"a curve needs x and acc of the same length, got {x.shape}, {a.shape}")
    if len(x) == 0:
        raise ValueError("empty curve: a curve needs at least one point")
    if np.any(np.diff(x) <= 0):
        raise ValueError("curve x must be strictly increasing")
    return x, a


def normalize_curves(curves: CurvesLike) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{int exp_id: (x, acc)}`` as float arrays (accepts JSON's string keys and
    ``{"x": ..., "acc": ...}`` values); raises ValueError for empty or malformed curves."""
    if not curves:
        raise ValueError("no curves: at least one tracked experience is needed")
    return {int(k): _curve(v) for k, v in sorted(curves.items(), key=lambda kv: int(kv[0]))}


def _bounds(boundaries: Sequence[float]) -> np.ndarray:
    b = np.asarray(boundaries, dtype=float)
    if b.ndim != 1 or len(b) == 0:
        raise ValueError("boundaries must be a non-empty list of update counts")
    if np.any(np.diff(b) < 0):
        raise ValueError("boundaries must be non-decreasing")
    return b


def _end(b: np.ndarray, k: int) -> float:
    return float(b[k + 1]) if k + 1 < len(b) else math.inf


def _value_at(x: np.ndarray, a: np.ndarray, at: float) -> Optional[float]:
    """The last point with ``x <= at``."""
    j = np.searchsorted(x, at, side="right") - 1
    return float(a[j]) if j >= 0 else None


def _check_k(k: Optional[int], b: np.ndarray, lo: int) -> int:
    T = len(b)
    k = T - 1 if k is None else int(k)
    if not lo <= k < T:
        raise ValueError(f"k must be in [{lo}, {T - 1}] for {T} experiences, got {k}")
    return k


TasksLike = Optional[Sequence[int]]


def _task_order(b: np.ndarray, tasks: TasksLike) -> list[int]:
    """``tasks[k]``: the task (curve id) trained in experience ``k``; default ``k``."""
    if tasks is None:
        return list(range(len(b)))
    t = [int(v) for v in tasks]
    if len(t) != len(b):
        raise ValueError(f"tasks must name the task of each of the {len(b)} experiences, got {t}")
    return t


def _first(t: list[int], i: int) -> Optional[int]:
    """The first experience that trained task ``i`` (None: never)."""
    return t.index(i) if i in t else None


def _old(cs: dict, t: list[int], k: int) -> list[int]:
    """Tracked tasks trained before experience ``k``, except the one ``k`` trains."""
    before = set(t[:k])
    return [i for i in cs if i in before and i != t[k]]


def min_acc(
    curves: CurvesLike,
    boundaries: Sequence[float],
    k: Optional[int] = None,
    tasks: TasksLike = None,
) -> float:
    """De Lange's min-ACC_k: mean over tracked ``i < k`` (``old(k)`` with ``tasks``) of the
    minimum accuracy on ``i`` after ``i`` was (first) learned (``end_{f(i)} < x <= end_k``).
    Default ``k`` = the last experience."""
    cs, b = normalize_curves(curves), _bounds(boundaries)
    t = _task_order(b, tasks)
    k = _check_k(k, b, 1)
    hi = _end(b, k)
    vals = []
    for i in _old(cs, t, k):
        x, a = cs[i]
        m = (x > _end(b, _first(t, i))) & (x <= hi)
        if m.any():
            vals.append(a[m].min())
    if not vals:
        raise ValueError(f"min-ACC_{k} needs a curve of an experience before {k} with points")
    return float(np.mean(vals))


def _ngm_exp(cs: dict, exp: Optional[int]) -> int:
    e = min(cs) if exp is None else int(exp)
    if e not in cs:
        raise ValueError(f"no curve for experience {e}; curves: {sorted(cs)}")
    return e


def _ngm_first(t: list[int], e: int) -> int:
    """The NGM blocks of curve ``e`` start at its first training experience."""
    f = _first(t, e)
    return len(t) if f is None else f


def _blocks(x: np.ndarray, a: np.ndarray, b: np.ndarray, first: int) -> list[np.ndarray]:
    """NGM blocks ``k = first..T-1``: points with ``boundaries[k] < x <= end_k``."""
    out = []
    for k in range(first, len(b)):
        m = (x > b[k]) & (x <= _end(b, k))
        out.append(a[m])
    return out


def avg_min_acc(
    curves: CurvesLike,
    boundaries: Sequence[float],
    convention: str = "delange",
    exp: Optional[int] = None,
    tasks: TasksLike = None,
) -> float:
    """avg-min-ACC: De Lange's final min-ACC (``min_acc(T-1)``), or NGM-SGD's mean of the
    tracked curve's block minima over blocks ``f(exp)..T-2``."""
    _check_convention(convention)
    if convention == "delange":
        return min_acc(curves, boundaries, None, tasks)
    cs, b = normalize_curves(curves), _bounds(boundaries)
    e = _ngm_exp(cs, exp)
    first = _ngm_first(_task_order(b, tasks), e)
    blocks = [blk for blk in _blocks(*cs[e], b, first)[:-1] if len(blk)]
    if not blocks:
        raise ValueError("NGM avg-min-ACC needs at least two experiences with points")
    return float(np.mean([blk.min() for blk in blocks]))


def avg_acc(
    curves: CurvesLike,
    boundaries: Sequence[float],
    convention: str = "delange",
    exp: Optional[int] = None,
    tasks: TasksLike = None,
) -> float:
    """Average accuracy: mean over curves (tasks) of the final accuracy (De Lange), or
    NGM-SGD's mean of the tracked curve's block-final accuracies."""
    _check_convention(convention)
    cs, b = normalize_curves(curves), _bounds(boundaries)
    if convention == "delange":
        return float(np.mean([a[-1] for x, a in cs.values()]))
    e = _ngm_exp(cs, exp)
    first = _ngm_first(_task_order(b, tasks), e)
    finals = [blk[-1] for blk in _blocks(*cs[e], b, first) if len(blk)]
    if not finals:
        raise ValueError("NGM avg-ACC needs points after an update")
    return float(np.mean(finals))


def wc_acc(
    curves: CurvesLike,
    boundaries: Sequence[float],
    k: Optional[int] = None,
    convention: str = "delange",
    exp: Optional[int] = None,
    tasks: TasksLike = None,
) -> float:
    """Worst-case accuracy. De Lange: ``(1/n) A_{tasks[k]}(end_k) + (1 - 1/n) min_acc(k)``
    with ``n`` = distinct tasks trained in ``0..k`` (``k + 1`` without repeats); NGM-SGD:
    ``(1/T) final + (1 - 1/T) avg_min_acc(ngm)`` (``k`` unused)."""
    _check_convention(convention)
    cs, b = normalize_curves(curves), _bounds(boundaries)
    t = _task_order(b, tasks)
    if convention in NGM_CONVENTIONS:
        T = len(b)
        e = _ngm_exp(cs, exp)
        final = float(cs[e][1][-1])
        if T == 1:
            return final
        return final / T + (1 - 1 / T) * avg_min_acc(curves, boundaries, "ngm", e, t)
    k = _check_k(k, b, 0)
    if t[k] not in cs:
        raise ValueError(f"WC-ACC_{k} needs the curve of task {t[k]} (trained in {k}); track it")
    cur = _value_at(*cs[t[k]], _end(b, k))
    if cur is None:
        raise ValueError(f"no point of task {t[k]} by the end of experience {k}")
    n = len(set(t[: k + 1]))
    if n == 1:
        return cur
    return cur / n + (1 - 1 / n) * min_acc(curves, boundaries, k, t)


def _gap_pairs(cs: dict, b: np.ndarray, k: int, t: list[int]):
    """(ref = A_i(end_{k-1}), x, a of experience k's segment) for tracked ``i`` in old(k)."""
    lo, hi = b[k], _end(b, k)
    for i in _old(cs, t, k):
        x, a = cs[i]
        ref = _value_at(x, a, lo)
        m = (x >= lo) & (x <= hi)
        if ref is None or not m.any():
            continue
        yield ref, x[m], a[m]


def stability_gap(
    curves: CurvesLike,
    boundaries: Sequence[float],
    k: int,
    relative: bool = True,
    tasks: TasksLike = None,
    convention: str = "delange",
    exp: Optional[int] = None,
) -> float:
    """SG_k: the drop from ``A_i(end_{k-1})`` to the minimum during experience ``k``,
    relative (divided by ``A_i(end_{k-1})``) or absolute.

    ``"delange"``: mean over tracked ``i < k`` (``old(k)`` with ``tasks``), minimum over
    ``boundaries[k] <= x <= end_k`` (the reference point included, so the gap is >= 0),
    0 for a zero reference.
    ``"ngm"`` (NGM-SGD's formula, tracked curve ``exp``): ``(ref - min(block k)) / ref``,
    block ``k`` = points with ``boundaries[k] < x <= end_k``; negative if the block never
    drops below ``ref``, NaN if ``ref = 0`` (relative). ``"ngm_clamped"``: the same,
    clamped at 0, and 0 for a zero reference.
    """
    _check_convention(convention)
    cs, b = normalize_curves(curves), _bounds(boundaries)
    t = _task_order(b, tasks)
    k = _check_k(k, b, 1)
    if convention in NGM_CONVENTIONS:
        return _ngm_gap(cs, b, k, relative, convention == "ngm_clamped", exp, t)
    gaps = []
    for ref, _x, a in _gap_pairs(cs, b, k, t):
        g = max(ref - float(a.min()), 0.0)
        gaps.append((g / ref if ref > 0 else 0.0) if relative else g)
    if not gaps:
        raise ValueError(f"SG_{k} needs a tracked experience before {k} with points")
    return float(np.mean(gaps))


def _ngm_gap(
    cs: dict, b: np.ndarray, k: int, relative: bool, clamp: bool, exp, t: list[int]
) -> float:
    e = _ngm_exp(cs, exp)
    x, a = cs[e]
    ref = _value_at(x, a, b[k]) if k > _ngm_first(t, e) else None
    block = a[(x > b[k]) & (x <= _end(b, k))]
    if ref is None or not len(block):
        raise ValueError(f"NGM SG_{k} needs points of curve {e} before and during experience {k}")
    g = ref - float(block.min())
    if clamp:
        g = max(g, 0.0)
        return (g / ref if ref > 0 else 0.0) if relative else g
    if not relative:
        return g
    return g / ref if ref != 0 else math.nan  # the authors' 0/0


def _ks_with_pairs(cs: dict, b: np.ndarray, t: list[int]) -> list[int]:
    return [k for k in range(1, len(b)) if any(True for _ in _gap_pairs(cs, b, k, t))]


def avg_stability_gap(
    curves: CurvesLike,
    boundaries: Sequence[float],
    relative: bool = True,
    tasks: TasksLike = None,
    convention: str = "delange",
    exp: Optional[int] = None,
) -> float:
    """avg-SG: mean of SG_k over ``k = 1..T-1`` (those with a tracked earlier task; NGM
    conventions: the switches after the tracked curve's first training, with points).
    Under ``"ngm"`` a plain mean, so one NaN SG_k (zero reference) makes it NaN, as in the
    authors' code."""
    _check_convention(convention)
    cs, b = normalize_curves(curves), _bounds(boundaries)
    t = _task_order(b, tasks)
    if convention in NGM_CONVENTIONS:
        exp = _ngm_exp(cs, exp)
        vals = []
        for k in range(_ngm_first(t, exp) + 1, len(b)):
            try:
                vals.append(stability_gap(cs, b, k, relative, t, convention, exp))
            except ValueError:
                continue
        if not vals:
            raise ValueError("NGM avg-SG needs two experiences with points on the tracked curve")
        return float(np.mean(vals))
    ks = _ks_with_pairs(cs, b, t)
    if not ks:
        raise ValueError("avg-SG needs two experiences and a tracked earlier one")
    return float(np.mean([stability_gap(cs, b, k, relative, t) for k in ks]))


def recovery_iterations(
    curves: CurvesLike,
    boundaries: Sequence[float],
    k: int,
    tolerance: float = 0.01,
    tasks: TasksLike = None,
) -> float:
    """Updates from the first minimum during experience ``k`` until accuracy is back within
    ``tolerance`` of ``A_i(end_{k-1})`` (inside experience ``k``); mean over tracked ``i < k``,
    ``inf`` if some ``i`` never recovers."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    cs, b = normalize_curves(curves), _bounds(boundaries)
    t = _task_order(b, tasks)
    k = _check_k(k, b, 1)
    rec = []
    for ref, x, a in _gap_pairs(cs, b, k, t):
        j = int(np.argmin(a))
        after = np.nonzero(a[j:] >= ref - tolerance)[0]
        rec.append(float(x[j + after[0]] - x[j]) if len(after) else math.inf)
    if not rec:
        raise ValueError(f"recovery for experience {k} needs a tracked earlier experience")
    return float(np.mean(rec))


def avg_recovery_iterations(
    curves: CurvesLike,
    boundaries: Sequence[float],
    tolerance: float = 0.01,
    tasks: TasksLike = None,
) -> float:
    """Mean of :func:`recovery_iterations` over ``k = 1..T-1`` (``inf`` if any is)."""
    cs, b = normalize_curves(curves), _bounds(boundaries)
    t = _task_order(b, tasks)
    ks = _ks_with_pairs(cs, b, t)
    if not ks:
        raise ValueError("recovery needs two experiences and a tracked earlier one")
    return float(np.mean([recovery_iterations(cs, b, k, tolerance, t) for k in ks]))


def _windowed(a: np.ndarray, w: int, sign: float) -> float:
    best = 0.0
    n = len(a)
    for lag in range(1, min(w - 1, n - 1) + 1):
        d = sign * (a[:-lag] - a[lag:])
        best = max(best, float(d.max()))
    return best


def _check_w(w: int) -> int:
    if int(w) != w or w < 2:
        raise ValueError(f"the window w must be an integer >= 2, got {w}")
    return int(w)


def windowed_forgetting(curves: CurvesLike, w: int) -> float:
    """WF^w: per curve the largest drop ``A[p] - A[q]``, ``p < q <= p + w - 1``, averaged."""
    w = _check_w(w)
    cs = normalize_curves(curves)
    return float(np.mean([_windowed(a, w, 1.0) for x, a in cs.values()]))


def windowed_plasticity(curves: CurvesLike, w: int) -> float:
    """WP^w: per curve the largest rise ``A[q] - A[p]``, ``p < q <= p + w - 1``, averaged."""
    w = _check_w(w)
    cs = normalize_curves(curves)
    return float(np.mean([_windowed(a, w, -1.0) for x, a in cs.values()]))


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; valid: {', '.join(CONVENTIONS)}")


def _try(f, *args, **kwargs) -> float:
    try:
        return f(*args, **kwargs)
    except ValueError:
        return math.nan


def stability_gap_scores(
    curves: CurvesLike,
    boundaries: Sequence[float],
    convention: str = "delange",
    windows: Sequence[int] = (10, 100),
    tolerance: float = 0.01,
    exp: Optional[int] = None,
    tasks: TasksLike = None,
) -> dict[str, float]:
    """Every final score in one dict (NaN where a score is undefined, e.g. one experience).

    Keys: ``avg_ACC``, ``avg_min_ACC``, ``WC_ACC``, ``avg_SG``, ``avg_SG_abs``,
    ``avg_recovery``, ``WF<w>``, ``WP<w>``. ``tasks``: the task of each experience
    (a tracker's ``to_dict()["tasks"]``; default: no repeats).
    """
    _check_convention(convention)
    for w in windows:
        _check_w(w)
    cs = normalize_curves(curves)
    b = _bounds(boundaries)
    t = _task_order(b, tasks)
    out = {
        "avg_ACC": _try(avg_acc, cs, b, convention, exp, t),
        "avg_min_ACC": _try(avg_min_acc, cs, b, convention, exp, t),
        "WC_ACC": _try(wc_acc, cs, b, None, convention, exp, t),
        "avg_SG": _try(avg_stability_gap, cs, b, True, t, convention, exp),
        "avg_SG_abs": _try(avg_stability_gap, cs, b, False, t, convention, exp),
        "avg_recovery": _try(avg_recovery_iterations, cs, b, tolerance, t),
    }
    for w in windows:
        out[f"WF{w}"] = windowed_forgetting(cs, w)
        out[f"WP{w}"] = windowed_plasticity(cs, w)
    return out


def mean_curves(runs: Sequence[CurvesLike]) -> dict[int, tuple[list[float], list[float]]]:
    """The seed-averaged curves of several runs (same experiences and x in every run).

    Scoring the mean curve (what NGM-SGD's tables do) differs from averaging per-seed
    scores: one seed's dip is smoothed away; reports give the latter.
    """
    if not runs:
        raise ValueError("mean_curves needs at least one run")
    normed = [normalize_curves(r) for r in runs]
    ids = set(normed[0])
    out = {}
    for i in sorted(ids):
        xs = [n[i][0] for n in normed if i in n]
        if len(xs) != len(normed) or any(not np.array_equal(x, xs[0]) for x in xs):
            raise ValueError(f"curve {i} differs in x (or is missing) across runs")
        acc = np.mean([n[i][1] for n in normed], axis=0)
        out[i] = (xs[0].tolist(), acc.tolist())
    if any(set(n) != ids for n in normed):
        raise ValueError("runs track different experiences")
    return out


# --------------------------------------------------------------------------- the metric

# Metric names (Avalanche's ``Name/<phase>_phase/<stream>_stream[/...]``, docs/metrics.md):
# every value is measured during training (train phase) on the test subsets (test stream).
PHASE_STREAM = "train_phase/test_stream"
CURVE_NAME = "TrackedAcc"  # + /train_phase/test_stream/ExpNNN
EXP_NAMES = {  # after each training experience
    "min_ACC": "MinAcc_Exp",
    "WC_ACC": "WCAcc_Exp",
    "SG": "StabilityGap_Exp",
    "SG_abs": "StabilityGapAbs_Exp",
    "recovery": "RecoveryIters_Exp",
}
STREAM_NAMES = {  # once every task is trained: stability_gap_scores' keys
    "avg_ACC": "AvgAcc_Stream",
    "avg_min_ACC": "AvgMinAcc_Stream",
    "WC_ACC": "WCAcc_Stream",
    "avg_SG": "AvgStabilityGap_Stream",
    "avg_SG_abs": "AvgStabilityGapAbs_Stream",
    "avg_recovery": "AvgRecoveryIters_Stream",
}
CONVENTION_DEPENDENT = ("avg_ACC", "avg_min_ACC", "WC_ACC", "avg_SG", "avg_SG_abs")
# NGM-SGD's conventions, as Avalanche's ``Top1_`` names a variant
PREFIXES = {"delange": "", "ngm": "NGM_", "ngm_clamped": "NGMClamped_"}


def stream_metric_name(key: str, convention: str = "delange") -> str:
    """The emitted name of a :func:`stability_gap_scores` key (``WF<w>`` -> ``WF<w>_Stream``)."""
    _check_convention(convention)
    base = STREAM_NAMES.get(key, f"{key}_Stream")
    if key in CONVENTION_DEPENDENT:
        base = PREFIXES[convention] + base
    return f"{base}/{PHASE_STREAM}"


class StabilityGapMetric(Observer, PluginMetric[dict]):
    """Per-update accuracy curves of the seen experiences and their stability-gap scores.

    The one door to the stability gap: a ``PluginMetric`` for an ``EvaluationPlugin``
    (``EvaluationPlugin(StabilityGapMetric(test_stream=...), loggers=[...])``) that
    records the curves from its callbacks, emits every point and score to the loggers,
    and keeps the curves for :meth:`to_dict` (the suite runner's record) and the pure
    scores above (:meth:`scores`). It only evaluates, so it needs no place in
    ``plugins=``; an :class:`~avalanche_neumod.observer.Observer`, it stays out of probes.

    Points: before the first update of every experience and after every
    ``eval_every``-th update, plus one at the end of each experience. ``x`` = the
    number of updates done (strictly increasing per curve). A point after update
    ``n`` is taken once every plugin has finished iteration ``n`` (at the next
    ``before_training_iteration``, or at the end of the epoch), so it sees the
    method's complete update. Where two points share an ``x`` (the last point of
    experience ``k-1`` and the pre-update point of ``k``: no update in between) the
    later one replaces the earlier one: the state experience ``k`` starts from, after
    any boundary hooks.

    Curves are keyed by task: a training experience is scored on the test experience
    of its task (:mod:`.task_identity`: ``task_id``, else ``current_experience``), so a
    task trained several times (``benchmarks.recurring``) has one curve and ``tasks``
    lists the task of each training experience. "Seen" = tasks trained so far, the
    current one included; only ``tracked`` ones (``"all"`` or a list of test experience
    ids, e.g. ``[0]`` as in NGM-SGD) are evaluated. Without repeats, task ``k`` is
    trained in experience ``k`` and the seen ones are ``0..k``. The subsets are drawn
    once with a private generator (``seed``): the global RNG is never touched, so
    tracking leaves the main run unchanged.

    Emits, phase ``train`` (measured during training) on the ``test`` stream, x = the
    update count for curve points and ``clock.train_iterations`` for scores:

    - ``TrackedAcc/train_phase/test_stream/ExpNNN`` for every new curve point
      (``emit_curves``), at ``before_training_iteration``/``after_training_epoch``;
    - at ``after_training_exp`` of experience ``k``: ``MinAcc_Exp`` (k >= 1),
      ``WCAcc_Exp``, ``StabilityGap_Exp``, ``StabilityGapAbs_Exp`` and
      ``RecoveryIters_Exp`` (k >= 1), De Lange's convention;
    - at ``after_training_exp`` once every test experience's task is trained (the last
      experience without repeats): ``AvgAcc_Stream``, ``AvgMinAcc_Stream``,
      ``WCAcc_Stream``, ``AvgStabilityGap_Stream``, ``AvgStabilityGapAbs_Stream``,
      ``AvgRecoveryIters_Stream``, ``WF<w>_Stream``, ``WP<w>_Stream``; with
      ``convention="ngm"`` the convention-dependent ones are ``NGM_AvgAcc_Stream``, ...

    each as ``<name>/train_phase/test_stream`` (old names: docs/metrics.md); with
    ``convention="ngm_clamped"`` the prefix is ``NGMClamped_``. Under an NGM convention the
    convention-dependent scores are avg-ACC, avg-min-ACC, WC-ACC and the two avg-SG.
    """

    @checked(eval_every=integer(1), samples_per_exp=integer(1, none_ok=True))
    def __init__(
        self,
        test_stream: Optional[Sequence] = None,
        *,
        experiences: Optional[Sequence] = None,
        samples_per_exp: Optional[int] = 1000,
        eval_every: int = 1,
        tracked: Union[str, Sequence[int]] = "all",
        seed: int = 0,
        batch_size: int = 1024,
        forward: Optional[ForwardFn] = None,
        convention: str = "delange",
        windows: Sequence[int] = (10, 100),
        tolerance: float = 0.01,
        emit_curves: bool = True,
    ):
        super().__init__()
        if isinstance(test_stream, StabilityGapMetric):
            raise TypeError(
                "StabilityGapMetric is the tracker itself now: build one, "
                "StabilityGapMetric(test_stream=..., convention=...), put it in the "
                "EvaluationPlugin and read its to_dict() (docs/metrics.md)"
            )
        _check_convention(convention)
        for w in windows:
            _check_w(check_integer("the window w", w, 2))
        check_real("tolerance", tolerance, 0.0)
        if (test_stream is None) == (experiences is None):
            raise ValueError("give exactly one of test_stream or experiences=")
        exps = list(test_stream if test_stream is not None else experiences)
        if not exps:
            raise ValueError("the metric needs at least one evaluation experience")
        T = len(exps)
        if isinstance(tracked, str):
            if tracked != "all":
                raise ValueError(f"tracked must be 'all' or a list of ids, got {tracked!r}")
            ids = list(range(T))
        else:
            ids = sorted({int(i) for i in tracked})
            if not ids or ids[0] < 0 or ids[-1] >= T:
                raise ValueError(
                    f"tracked ids must be a non-empty subset of 0..{T - 1}, got {tracked}"
                )
        self.n_experiences = T
        self.task_index = TaskIndex(exps)
        self.tracked = ids
        self.eval_every = int(eval_every)
        self.samples_per_exp = samples_per_exp
        self.seed = seed
        self.convention = convention
        self.windows = tuple(windows)
        self.tolerance = tolerance
        self.emit_curves = emit_curves
        subsets = experience_subsets(exps, samples_per_exp, seed)
        self.evaluator = SubsetEvaluator({i: subsets[i] for i in ids}, batch_size, forward)
        self.reset()

    def reset(self) -> None:
        """Forget all curves (a new run)."""
        self.curves: dict[int, tuple[list[int], list[float]]] = {i: ([], []) for i in self.tracked}
        self.boundaries: list[int] = []
        self.tasks: list[int] = []  # tasks[k]: test experience (task) trained in experience k
        self.updates = 0
        self.current = -1
        self.n_points = 0  # evaluation points taken (for cost accounting)
        self._pending = False
        self._start = False
        self._emitted: dict[int, int] = {}  # curve points already emitted, per curve

    # -- recording
    def seen(self) -> list[int]:
        """Tracked tasks trained so far (the current one included)."""
        trained = set(self.tasks)
        return [i for i in self.tracked if i in trained]

    @property
    def all_trained(self) -> bool:
        """Every test experience's task has been trained at least once."""
        return len(set(self.tasks)) == self.n_experiences

    def _record(self, strategy) -> None:
        ids = self.seen()
        if not ids:
            return
        accs = self.evaluator.evaluate(strategy.model, ids, strategy.device)
        x = self.updates
        for i, acc in accs.items():
            xs, ys = self.curves[i]
            if xs and xs[-1] == x:
                ys[-1] = acc
            else:
                xs.append(x)
                ys.append(acc)
        self.n_points += 1
        self._pending = False

    def flush(self, strategy) -> None:
        """Take the pending point, if any (idempotent)."""
        if self._start:
            self._start = False
            self._record(strategy)
        elif self._pending:
            self._record(strategy)

    # -- Avalanche callbacks (from the EvaluationPlugin, after every plugin)
    def before_training(self, strategy, **kwargs) -> None:
        ev = getattr(strategy, "evaluator", None)
        if self in strategy.plugins and ev is not None and self in ev.metrics:
            raise RuntimeError(
                "StabilityGapMetric is both in plugins= and in the EvaluationPlugin: it would "
                "record every point twice; keep it in the EvaluationPlugin only"
            )

    def before_training_exp(self, strategy, **kwargs) -> None:
        task = self.task_index.of(strategy.experience)
        self.flush(strategy)
        self.current = task
        self.tasks.append(task)
        self.boundaries.append(self.updates)
        self._start = True

    def before_training_iteration(self, strategy, **kwargs) -> Optional[list[MetricValue]]:
        if self._start or self._pending:
            self.flush(strategy)
        return self._new_points() or None

    def after_training_iteration(self, strategy, **kwargs) -> None:
        self.updates += 1
        if self.updates % self.eval_every == 0:
            self._pending = True

    def after_training_epoch(self, strategy, **kwargs) -> Optional[list[MetricValue]]:
        self.flush(strategy)
        return self._new_points() or None

    def after_training_exp(self, strategy, **kwargs) -> list[MetricValue]:
        self.flush(strategy)
        ids = self.seen()
        if any(not self.curves[i][0] or self.curves[i][0][-1] != self.updates for i in ids):
            self._record(strategy)  # the end-of-experience point
        return self._new_points() + self._experience_scores(strategy.clock.train_iterations)

    # -- emitted values
    def _new_points(self) -> list[MetricValue]:
        if not self.emit_curves:
            return []
        out = []
        for i, (xs, ys) in self.curves.items():
            start = self._emitted.get(i, 0)
            # a point later replaced at the same x (a boundary) is not re-emitted:
            # the curves are the reference
            for j in range(start, len(xs)):
                name = f"{CURVE_NAME}/{PHASE_STREAM}/Exp{i:03d}"
                out.append(MetricValue(self, name, float(ys[j]), int(xs[j])))
            self._emitted[i] = len(xs)
        return out

    def _experience_scores(self, x: int) -> list[MetricValue]:
        """The scores after training experience ``k`` (and the final ones once every task
        is trained), each a pure function of the curves."""
        cs, b, t = self.nonempty_curves(), self.boundaries, self.tasks
        k = len(b) - 1
        out: list[MetricValue] = []

        def emit(name: str, value: float) -> None:
            out.append(MetricValue(self, name, float(value), x))

        def emit_exp(key: str, value: float) -> None:
            emit(f"{EXP_NAMES[key]}/{PHASE_STREAM}", value)

        if cs and k >= 0:
            if t[k] in cs:
                emit_exp("WC_ACC", _try(wc_acc, cs, b, k, "delange", None, t))
            if k >= 1:
                emit_exp("min_ACC", _try(min_acc, cs, b, k, t))
                emit_exp("SG", _try(stability_gap, cs, b, k, True, t))
                emit_exp("SG_abs", _try(stability_gap, cs, b, k, False, t))
                emit_exp("recovery", _try(recovery_iterations, cs, b, k, self.tolerance, t))
            if self.all_trained:
                for key, v in self.result().items():
                    emit(stream_metric_name(key, self.convention), v)
        return out

    # -- results
    def to_dict(self) -> dict:
        """JSON-serialisable curves, boundaries and settings."""
        return {
            "curves": {
                str(i): {"x": list(xs), "acc": list(ys)} for i, (xs, ys) in self.curves.items()
            },
            "boundaries": list(self.boundaries),
            "tasks": list(self.tasks),
            "tracked": list(self.tracked),
            "eval_every": self.eval_every,
            "samples_per_exp": self.samples_per_exp,
            "updates": self.updates,
        }

    def nonempty_curves(self) -> dict[int, tuple[list[int], list[float]]]:
        return {i: c for i, c in self.curves.items() if c[0]}

    def scores(self, convention: Optional[str] = None, windows=None, tolerance=None) -> dict:
        """:func:`stability_gap_scores` of the current curves (task order included); by
        default in the metric's ``convention``, ``windows`` and ``tolerance``."""
        return stability_gap_scores(
            self.nonempty_curves(),
            self.boundaries,
            self.convention if convention is None else convention,
            self.windows if windows is None else windows,
            self.tolerance if tolerance is None else tolerance,
            tasks=self.tasks,
        )

    def result(self) -> dict:
        """The final scores in the metric's convention (:meth:`scores`)."""
        return self.scores()

    def __str__(self) -> str:
        return "StabilityGapMetric"


def __getattr__(name: str) -> type:
    """Former names (``StabilityGapTracker``): this class, with a DeprecationWarning."""
    return resolve(__name__, name)
