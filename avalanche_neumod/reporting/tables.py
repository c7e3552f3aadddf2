"""Markdown tables from saved results, in the papers' formats (mean (std) over seeds).

Pure functions of a :class:`~avalanche_neumod.reporting.run_view.View`:

- :func:`final_accuracy_table`: average final accuracy per method and stream
  (NeuMoSync's Figure 3 numbers);
- :func:`table1`: NeuMoSync's Table 1 (BKT/FKT at beta/2, beta and their mean;
  LCA_0, LCA_F, LCA_B; average final accuracy), in percent;
- :func:`table2`: NeuMoSync's Table 2 (LCA_F and accuracy per stream), as fractions;
- :func:`ngm_table`: NGM-SGD's Table 1 (avg-ACC, avg-min-ACC, WC-ACC, avg-SG), in percent;
- :func:`recurring_table`: final accuracy on the recurring task (Figure 4's numbers);
- :func:`status_table`: cells that diverged or failed, and timings.

A seed that diverged or failed is never averaged in: the cell says how many did. Every
number is a stored field of the cells' records (:mod:`avalanche_neumod.records`): the
tables format and average over seeds, they never compute a score.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

from ..experiment import registry
from ..experiment import tuning as tu
from ..experiment.suite import method_grids, tune_settings
from ..records import CellResult, accuracy_kind
from . import stats
from .run_view import Stat, View, num


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def accuracy_of(cell: CellResult) -> float:
    """The cell's average accuracy as its stream defines it (``metrics.avg_accuracy``)."""
    m = cell.metrics
    return num(m.get("avg_accuracy", m.get("avg_final_accuracy")))


def accuracy_kinds(view: View) -> dict[str, str]:
    kinds = {}
    for r in view.results:
        k = r.metrics.get("avg_accuracy_kind")
        if k:
            kinds.setdefault(r.config["stream_key"], k)
    return kinds


ACCURACY_NOTE = {
    "final": "mean over experiences of the accuracy on each at the end of the stream",
    "end_of_task": "mean over experiences of the accuracy on each right after training on it",
}


ACCURACY_SHORT = {"final": "at the end of the stream", "end_of_task": "right after each task"}


def final_accuracy(cell: CellResult) -> float:
    """The mean over experiences of the accuracy at the end of the stream."""
    return num(cell.metrics.get("avg_final_accuracy"))


def final_accuracy_table(view: View) -> str:
    """Rows: methods; columns: streams, each labelled with its accuracy reading; a stream
    read right after each task also gets its end-of-stream column. Percent, mean ± the
    half-width of the 95% t-interval over seeds."""
    kinds = accuracy_kinds(view)
    cols: list[tuple[str, str, Callable[[CellResult], float]]] = []
    for s in view.streams:
        k = kinds.get(s)
        label = view.stream_label(s)
        cols.append((s, f"{label} ({ACCURACY_SHORT.get(k, k)})" if k else label, accuracy_of))
        if k == "end_of_task":
            cols.append((s, f"{label} ({ACCURACY_SHORT['final']})", final_accuracy))
    header = ["Method"] + [h for _, h, _ in cols]
    rows = []
    for m in view.methods:
        row = [m]
        for s, _, get in cols:
            g = view.group(s, m)
            row.append(g.stat(get).fmt() if g else "")
        rows.append(row)
    notes = [f"- {view.stream_label(s)}: {ACCURACY_NOTE.get(k, k)}" for s, k in kinds.items()]
    return md_table(header, rows) + (
        "\n\nAccuracy per stream:\n" + "\n".join(notes) if notes else ""
    )


def _transfer(key: str, at: Optional[str] = None) -> Callable[[CellResult], float]:
    """A stored Table 1 score of a cell's transfer record: ``LCA_*`` (``at=None``), or
    ``FKT``/``BKT``'s summary ``at`` "half", "beta" or "mean"."""

    def get(c: CellResult) -> Optional[float]:
        t = c.measures.transfer
        value = getattr(t, key)
        return value if at is None else getattr(value, at)

    return get


TABLE1_COLUMNS = [
    ("BKT_{β/2}", _transfer("BKT", "half")),
    ("BKT_β", _transfer("BKT", "beta")),
    ("BKT_mean", _transfer("BKT", "mean")),
    ("FKT_{β/2}", _transfer("FKT", "half")),
    ("FKT_β", _transfer("FKT", "beta")),
    ("FKT_mean", _transfer("FKT", "mean")),
    ("LCA_0", _transfer("LCA_0")),
    ("LCA_F", _transfer("LCA_F")),
    ("LCA_B", _transfer("LCA_B")),
    ("Avg acc", accuracy_of),  # the stream's own reading, named in its block's heading row
]


def has_transfer(c: CellResult) -> bool:
    return c.measures.transfer is not None


def table1(view: View) -> str:
    """NeuMoSync's Table 1, one block of rows per stream, in percent."""
    header = ["Method"] + [name for name, _ in TABLE1_COLUMNS]
    rows = []
    kinds = accuracy_kinds(view)
    for s in view.streams:
        ms = [m for m in view.methods_of(s) if any(has_transfer(c) for c in view.group(s, m).cells)]
        if not ms:
            continue
        beta = _beta(view, s)
        reading = ACCURACY_SHORT.get(kinds.get(s, ""), "")
        note = f"; Avg acc {reading}" if reading else ""
        label = f"**{view.stream_label(s)}** (β = {beta}{note})"
        rows.append([label] + [""] * len(TABLE1_COLUMNS))
        for m in ms:
            g = view.group(s, m)
            rows.append([m] + [g.stat(get).fmt() for _, get in TABLE1_COLUMNS])
    return md_table(header, rows) if rows else ""


def _beta(view: View, stream: str) -> str:
    for m in view.methods_of(stream):
        for c in view.group(stream, m).ok:
            if has_transfer(c):
                return str(c.measures.transfer.beta)
    return "?"


def table2(view: View) -> str:
    """NeuMoSync's Table 2: LCA_F and accuracy per stream, as fractions, mean ± the 95%
    t half-width."""
    streams = [
        s
        for s in view.streams
        if any(has_transfer(c) for m in view.methods_of(s) for c in view.group(s, m).cells)
    ]
    if not streams:
        return ""
    header = ["Method"]
    for s in streams:
        header += [f"{view.stream_label(s)} LCA_F", f"{view.stream_label(s)} Acc"]
    rows = []
    for m in view.methods:
        row = [m]
        for s in streams:
            g = view.group(s, m)
            if g is None:
                row += ["", ""]
                continue
            row += [g.stat(_transfer("LCA_F")).fmt(1.0), g.stat(accuracy_of).fmt(1.0)]
        rows.append(row)
    return md_table(header, rows)


def _sg(key: str, convention: str) -> Callable[[CellResult], float]:
    """A stored stability-gap score (the evaluation's name, e.g. ``avg_SG``) of one
    convention (``delange``, ``ngm``)."""

    def get(c: CellResult) -> float:
        return c.measures.stability_gap.scores[convention].get(key)

    return get


NGM_COLUMNS = [
    ("avg-ACC", "avg_ACC"),
    ("avg-min-ACC", "avg_min_ACC"),
    ("WC-ACC", "WC_ACC"),
    ("avg-SG", "avg_SG"),
]


def has_sg(c: CellResult) -> bool:
    return c.measures.stability_gap is not None


def ngm_table(view: View, convention: str = "ngm") -> str:
    """NGM-SGD's Table 1 per stream (percent; per-seed scores, mean (std) over seeds)."""
    header = ["Method"] + [name for name, _ in NGM_COLUMNS]
    rows = []
    for s in view.streams:
        ms = [m for m in view.methods_of(s) if any(has_sg(c) for c in view.group(s, m).cells)]
        if not ms:
            continue
        rows.append([f"**{view.stream_label(s)}**"] + [""] * len(NGM_COLUMNS))
        for m in ms:
            g = view.group(s, m)
            rows.append([m] + [g.stat(_sg(k, convention)).fmt() for _, k in NGM_COLUMNS])
    return md_table(header, rows) if rows else ""


def has_recurring(c: CellResult) -> bool:
    return "recurring" in c.metrics


def recurring_table(view: View) -> str:
    """Final accuracy on the recurring task R per method and stream (percent)."""
    streams = [
        s
        for s in view.streams
        if any(has_recurring(c) for m in view.methods_of(s) for c in view.group(s, m).ok)
    ]
    if not streams:
        return ""
    header = ["Method"] + [view.stream_label(s) for s in streams]
    rows = []
    for m in view.methods:
        row = [m]
        for s in streams:
            g = view.group(s, m)
            row.append(g.stat(lambda c: c.metrics["recurring"]["final"]).fmt() if g else "")
        rows.append(row)
    return md_table(header, rows)


def status_table(view: View) -> str:
    """Per (stream, method): seeds finished / diverged / collapsed / failed, and mean wall
    time per cell; where some cells were adopted from another run folder (``--share``),
    how many."""
    header = ["Stream", "Method", "ok", "diverged", "collapsed", "failed", "time per cell (s)"]
    header.append("iterations")
    shared = any(c.shared_from for s in view.streams for m in view.methods_of(s)
                 for c in view.group(s, m).cells)  # fmt: skip
    if shared:
        header.append("adopted (trained in another run)")
    rows = []
    for s in view.streams:
        for m in view.methods_of(s):
            g = view.group(s, m)
            st = [c.status for c in g.cells]
            t = Stat([num(c.timings.get("total_s")) for c in g.cells], len(g.cells))
            its = Stat([num(c.metrics.get("n_iterations")) for c in g.ok], len(g.cells))
            rows.append(
                [
                    view.stream_label(s),
                    m,
                    str(st.count("ok")),
                    str(st.count("diverged")),
                    str(st.count("collapsed")),
                    str(st.count("failed")),
                    t.fmt(1.0, 1, std=False),
                    its.fmt(1.0, 0, std=False),
                ]
                + ([str(sum(1 for c in g.cells if c.shared_from))] if shared else [])
            )
    return md_table(header, rows)


def _per_iteration(c: CellResult) -> float:
    its = num(c.metrics.get("n_iterations"))
    train = sum(num(t) for t in c.timings.get("train_s", []))
    return train / its if its > 0 else math.nan


REFERENCES = ("FastNaive", "Naive")


def plain_row(view: View, stream: str, names: Sequence[str]) -> Optional[str]:
    """The first method key on ``stream`` that runs one of ``names`` (in that order of
    preference) without arguments."""
    for name in names:
        for m in view.methods_of(stream):
            g = view.group(stream, m)
            if g.method_name == name and not g.method_args:
                return m
    return None


def _reference(view: View, stream: str):
    """The stream's fine-tuning reference: our ``FastNaive``, else Avalanche's ``Naive``."""
    m = plain_row(view, stream, REFERENCES)
    return None if m is None else view.group(stream, m)


def timing_table(view: View) -> str:
    """Training time per iteration (ms) per method and stream, and its ratio to the stream's
    fine-tuning reference (:func:`_reference`), from the cells' recorded timings."""
    header = [
        "Stream",
        "Method",
        "ms per training iteration",
        "ratio to reference",
        "train s per cell",
        "eval s per cell",
    ]
    rows = []
    for s in view.streams:
        ref_g = _reference(view, s)
        ref = ref_g.stat(_per_iteration).mean if ref_g else math.nan
        for m in view.methods_of(s):
            g = view.group(s, m)
            st = g.stat(_per_iteration)
            ratio = st.mean / ref if math.isfinite(ref) and ref > 0 else math.nan
            rows.append(
                [
                    view.stream_label(s),
                    m,
                    st.fmt(1000.0, 3, std=False),
                    (f"{ratio:.2f}x ({ref_g.method})" if math.isfinite(ratio) else "n/a"),
                    g.stat(lambda c: sum(num(t) for t in c.timings["train_s"])).fmt(1.0, 1, False),
                    g.stat(lambda c: sum(num(t) for t in c.timings["eval_s"])).fmt(1.0, 1, False),
                ]
            )
    return md_table(header, rows)


def problem_list(view: View) -> str:
    """One line per diverged, collapsed or failed cell, with where and why."""
    lines = []
    for r in view.results:
        st = r.status
        if st == "diverged":
            d = r.diverged or {}
            lines.append(
                f"- `{r.cell_id}`: **diverged** (loss {d.get('loss')}) at iteration "
                f"{d.get('iteration')}, experience {d.get('experience')}"
            )
        elif st == "collapsed":
            d = r.collapsed or {}
            lines.append(
                f"- `{r.cell_id}`: **collapsed** ({d.get('reason')}) from iteration "
                f"{d.get('iteration')}"
            )
        elif st != "ok":
            err = (r.error or "").splitlines()
            lines.append(f"- `{r.cell_id}`: **{st}**: {err[0] if err else ''}")
    return "\n".join(lines)


# ---- fairness, tuning, mechanism activity, plasticity loss, provenance -----------------------

NAIVE_NAMES = ("Naive", "FastNaive")


def naive_key(view: View, stream: str) -> Optional[str]:
    """The stream's Naive row: a ``Naive`` (else ``FastNaive``) method without arguments."""
    return plain_row(view, stream, NAIVE_NAMES)


def _opt(cfg: dict) -> str:
    o = dict(cfg.get("optimizer") or {})
    name = o.pop("name", "sgd")
    if registry.builds_own_optimizer(cfg):  # its declaration: the optimizer is the mechanism
        lr = cfg.get("method", {}).get("args", {}).get("lr")
        return "its own" + (f" (lr={lr})" if lr is not None else "")
    return name + (" " + ", ".join(f"{k}={v}" for k, v in o.items()) if o else "")


def _grid_text(grid: dict) -> str:
    return "; ".join(f"{k} ∈ {{{', '.join(map(str, v))}}}" for k, v in grid.items())


def _pct(v) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v * 100:.2f}"


def _search_text(ch, extendable: Callable[[list], bool], budget: int) -> str:
    """How the grid search ended: values added on edges, and an edge the pick still sits on."""
    parts = [f"extended: {e['axis']} + {e['value']} (round {e['round']})" for e in ch.extensions]
    for k in ch.edges:
        if not extendable(ch.grid[k]):
            why = "axis not log-spaced"
        else:
            why = f"extended {budget} times already" if budget else "the suite sets no extension"
        parts.append(f"**on the {k} edge** ({why})")
    return "; ".join(parts) or "interior, not extended"


def _seed_text(ch) -> str:
    if len(ch.seeds) < 2:
        return ", ".join(map(str, ch.seeds))
    n = len(ch.kept)
    rest = ", ".join(map(str, ch.seeds[1:]))
    top = "all points" if n == len(ch.scores) else f"top {n} of {len(ch.scores)}"
    return f"{ch.seeds[0]} (all points); {rest} ({top})"


def tuning_details(view: View) -> str:
    """Every grid point's score on every tuning seed and its mean, per (stream, method)."""
    suite = view.manifest.get("suite") or {}
    grids = {k: (m or {}).get("tune") or {} for k, m in (suite.get("methods") or {}).items()}
    tuned = [r.to_dict() for r in view.tuning]
    if not tuned:
        return ""
    choices = tu.select(suite.get("tune"), grids, tuned)
    out = []
    for ch in choices.values():
        pts = tu.points(ch.grid)
        header = ["point"] + [f"seed {sd}" for sd in ch.seeds] + ["mean", ""]
        rows = [
            [tu.point_label(p)]
            + [
                _pct(ch.per_seed[sd][i]) if ch.per_seed[sd][i] is not None else "—"
                for sd in ch.seeds
            ]
            + [_pct(ch.scores[i]), "**chosen**" if p == ch.point else ""]
            for i, p in enumerate(pts)
        ]
        stream = "all streams" if ch.stream == "*" else view.stream_label(ch.stream)
        out.append(f"**{ch.method}** on {stream}:\n\n" + md_table(header, rows))
    return (
        "<details><summary>Every grid point's score per tuning seed (percent; — : not run "
        "on that seed, eliminated by the first seed's ranking)</summary>\n\n"
        + "\n\n".join(out)
        + "\n\n</details>"
    )


def tuning_table(view: View) -> str:
    """Per stream and method: the optimizer the reported cells used, the grid searched
    (after any extension), the picked point and its score (mean target over the tuning
    seeds), the seeds each point ran on, and how the search ended (extended, or left on an
    edge); methods without a grid are said to be untuned. Every point's per-seed scores
    follow in :func:`tuning_details`."""
    suite = view.manifest.get("suite") or {}
    tune = suite.get("tune")
    grids = {k: (m or {}).get("tune") or {} for k, m in (suite.get("methods") or {}).items()}
    declared = method_grids(suite.get("methods") or {}, tune)
    settings = tune_settings(tune)
    tuned = [r.to_dict() for r in view.tuning]
    choices = tu.select(tune, grids, tuned) if tuned and declared else {}
    target = settings["target"]
    header = [
        "Stream",
        "Method",
        "optimizer (reported cells)",
        "grid",
        "choice",
        "score",
        "tuning seeds",
        "search",
    ]
    rows = []
    for s in view.streams:
        for m in view.methods_of(s):
            g = view.group(s, m)
            opt = _opt(g.cells[0].config)
            ch = tu.choice_for(choices, s, m)
            if ch is not None:
                others = ", ".join(_pct(v) for v in ch.scores)
                rows.append(
                    [
                        view.stream_label(s),
                        m,
                        opt,
                        _grid_text(ch.grid),
                        tu.point_label(ch.point),
                        f"{_pct(ch.score)} (all points: {others})",
                        _seed_text(ch),
                        _search_text(ch, tu.extendable, int(settings["extend"] or 0)),
                    ]
                )
                continue
            if g.cells[0].config.get("tuned"):  # no manifest: the cells say what ran
                point = g.cells[0].config["tuned"]["point"]
                grid, choice = "(not in this run folder's manifest)", tu.point_label(point)
            elif m in declared:
                grid, choice = _grid_text(declared[m]), "no tuning cells in this run"
            else:
                grid, choice = "none declared", "not tuned (the suite declares no grid for it)"
            rows.append([view.stream_label(s), m, opt, grid, choice, "", "", ""])
    note = (
        f"Target: `{target['metric']}` ({target['mode']}imised), mean over the tuning seeds "
        f"{settings['seeds'] or '(none)'}"
        + (" and the streams" if settings["per"] == "suite" else "")
        + "; scores in percent. "
        + (
            f"Every point runs on the first tuning seed, the best {settings['keep']} also "
            "on the others, and the choice is the best mean of those. "
            if settings["keep"]
            else ""
        )
        + (
            f"A choice on the first or last value of a log-spaced axis adds the next value "
            f"outward and the search runs again (at most {settings['extend']} times per "
            "axis). "
            if settings["extend"]
            else ""
        )
        + "Tuning seeds are disjoint from the reported seeds; a grid point with a diverged "
        "or failed tuning cell scores n/a and is never picked."
        + _require_note(settings["require"], view)
    )
    details = tuning_details(view)
    return md_table(header, rows) + "\n\n" + note + ("\n\n" + details if details else "")


def _require_note(require: Optional[dict], view: View) -> str:
    """The caption's sentence on the suite's ``tune.require`` rule (empty without one)."""
    if not require:
        return ""
    where = (
        "On " + ", ".join(view.stream_label(x) for x in require["streams"])
        if require.get("streams")
        else "On every stream"
    )
    if require["metric"] == "accuracy_matrix.0.0":
        what = f"accuracy on task 1 right after training on it is below {require['min'] * 100:g} %"
        why = ": a point that does not fit the first task would measure under-training, not "
        why += "plasticity loss."
    else:
        what, why = f"`{require['metric']}` is below {require['min']:g}", "."
    return f" {where} a point also scores n/a when a tuning cell's {what} (`tune.require`){why}"


def _activity(c: CellResult) -> list[dict]:
    """The cell's mechanism-activity records, one per training experience."""
    return (c.measures.other.get("activity") or {}).get("per_experience") or []


def _act_last(key: str) -> Callable[[CellResult], float]:
    def get(c: CellResult) -> float:
        return num(_activity(c)[-1][key])

    return get


def _act_at(key: str, k: int) -> Callable[[CellResult], float]:
    def get(c: CellResult) -> float:
        return num(_activity(c)[k][key])

    return get


def identical_to_naive(view: View, stream: str, method: str) -> tuple[int, int]:
    """(seeds whose accuracy matrix equals the Naive row's bit for bit, seeds compared)."""
    nk = naive_key(view, stream)
    if nk is None or nk == method:
        return 0, 0
    naive = {c.seed: c for c in view.group(stream, nk).ok}
    same = n = 0
    for c in view.group(stream, method).ok:
        ref = naive.get(c.seed)
        if ref is None:
            continue
        n += 1
        same += ref.metrics.get("accuracy_matrix") == c.metrics.get("accuracy_matrix")
    return same, n


def has_activity(c: CellResult) -> bool:
    return bool(_activity(c))


def _act_col(g, ok: list, key: str, scale: float, digits: int) -> str:
    if not any(key in _activity(c)[-1] for c in ok):
        return ""
    return g.stat(_act_last(key)).fmt(scale, digits)


def _act_arrow(g, key: str, last: int, scale: float, digits: int) -> str:
    a = g.stat(_act_at(key, 0)).fmt(scale, digits)
    b = g.stat(_act_at(key, last)).fmt(scale, digits)
    return f"{a} → {b}"


# What ActivityRecorder records for every method, whatever its mechanism.
METHOD_INDEPENDENT_ACTIVITY = (
    "experience",
    "distance_from_init",
    "dormant",
    "effective_rank",
    "diagnose_error",
)
# The mechanism keys the summary table (:func:`activity_table`) shows, and those of its
# methods it leaves to the cell files (the share's numerator; S&P's count of its steps).
SUMMARISED_ACTIVITY = ("cbp_replaced", "redo_recycled", "l2init_penalty_share")
UNTABULATED_ACTIVITY = ("l2init_penalty", "shrink_perturb_steps")


def other_activity_keys(c: CellResult) -> list[str]:
    """The cell's activity keys no other table shows: what a method's
    ``mechanism_activity`` hook reports beyond the keys known here (e.g. a user's
    method's), in the order first recorded."""
    known = {*METHOD_INDEPENDENT_ACTIVITY, *SUMMARISED_ACTIVITY, *UNTABULATED_ACTIVITY}
    out: list[str] = []
    for rec in _activity(c):
        out += [k for k in rec if k not in known and k not in out]
    return out


def _digits(values: list[float]) -> int:
    finite = [v for v in values if math.isfinite(v)]
    return 0 if finite and all(float(v).is_integer() for v in finite) else 3


def other_activity_table(view: View) -> str:
    """Every other mechanism key (:func:`other_activity_keys`) per training experience,
    mean ± 95% CI over seeds: one row per (stream, method, key); empty when no method
    reports any."""
    rows, width = [], 0
    for s in view.streams:
        for m in view.methods_of(s):
            g = view.group(s, m)
            ok = [c for c in g.ok if has_activity(c)]
            keys: list[str] = []
            for c in ok:
                keys += [k for k in other_activity_keys(c) if k not in keys]
            n = max((len(_activity(c)) for c in ok), default=0)
            width = max(width, n)
            for key in keys:
                stats_k = [g.stat(_act_at(key, k)) for k in range(n)]
                d = _digits([v for st in stats_k for v in st.values])
                rows.append(
                    [view.stream_label(s), m, f"`{key}`", *(st.fmt(1.0, d) for st in stats_k)]
                )
    if not rows:
        return ""
    header = ["Stream", "Method", "Activity", *(f"after task {k + 1}" for k in range(width))]
    return md_table(header, [r + [""] * (len(header) - len(r)) for r in rows])


def activity_table(view: View) -> str:
    """What each method's mechanism did (end of the stream, mean ± 95% CI over seeds):
    CBP replacements, ReDo recycled units, distance from the initial parameters, L2Init
    penalty share of the loss, dormant fraction and effective rank after the first and the
    last task; and whether the cells equal the Naive row's bit for bit."""
    header = [
        "Stream",
        "Method",
        "CBP replaced",
        "ReDo recycled",
        "‖θ−θ₀‖",
        "L2Init penalty share (%)",
        "dormant % (task 1 → last)",
        "eff. rank (task 1 → last)",
        "= Naive bit for bit",
    ]
    rows = []
    for s in view.streams:
        for m in view.methods_of(s):
            g = view.group(s, m)
            ok = [c for c in g.ok if has_activity(c)]
            same, n = identical_to_naive(view, s, m)
            flag = f"**yes ({same}/{n} seeds)**" if same else ("no" if n else "")
            if not ok:
                rows.append([view.stream_label(s), m, "not recorded", "", "", "", "", "", flag])
                continue
            last = len(_activity(ok[0])) - 1
            rows.append(
                [
                    view.stream_label(s),
                    m,
                    _act_col(g, ok, "cbp_replaced", 1.0, 0),
                    _act_col(g, ok, "redo_recycled", 1.0, 0),
                    _act_col(g, ok, "distance_from_init", 1.0, 2),
                    _act_col(g, ok, "l2init_penalty_share", 100.0, 2),
                    _act_arrow(g, "dormant", last, 100.0, 1),
                    _act_arrow(g, "effective_rank", last, 1.0, 1),
                    flag,
                ]
            )
    return md_table(header, rows)


def naive_identical_list(view: View) -> str:
    """One line per (stream, method) whose cells equal the Naive row's bit for bit."""
    lines = []
    for s in view.streams:
        nk = naive_key(view, s)
        for m in view.methods_of(s):
            same, n = identical_to_naive(view, s, m)
            if same:
                lines.append(
                    f"- {view.stream_label(s)} / {m}: the accuracy matrix equals {nk}'s bit for "
                    f"bit in {same} of {n} seeds: its mechanism did not change training here."
                )
    return "\n".join(lines)


PLASTICITY_STREAM_WORDS = ("random_label", "permuted", "shuffle", "rotated", "drift")


def plasticity_streams(view: View) -> list[str]:
    """Memorisation and drift streams (not wrapped, e.g. recurring): those where the accuracy
    right after each task, against the task index, shows plasticity loss."""
    out = []
    for s in view.streams:
        cells = [c for m in view.methods_of(s) for c in view.group(s, m).ok]
        if not cells:
            continue
        st = cells[0].config.get("stream") or {}
        if st.get("wrappers"):
            continue
        name = str(st.get("name", s))
        if accuracy_kind(view.info(s)) == "end_of_task" or any(
            w in name for w in PLASTICITY_STREAM_WORDS
        ):
            out.append(s)
    return out


def _at_end(c: CellResult) -> list[float]:
    return [num(v) for v in c.metrics.get("accuracy_at_end") or []]


def slope_table(view: View) -> str:
    """Per plasticity stream and method: accuracy right after task 1 and after the last task,
    the least-squares slope of accuracy-after-each-task on the task index (points per task)
    over all tasks and from each seed's peak on, each with its 95% t-interval over the
    per-seed slopes, and the slope's difference with the Naive row's, paired by seed (the
    t-interval of the per-seed differences)."""
    header = [
        "Stream",
        "Method",
        "after task 1",
        "after last task",
        "slope, all tasks (points/task) [95% CI]",
        "slope from the peak [95% CI]",
        "slope − Naive's, paired by seed [95% CI]",
        "seeds",
        "trend",
    ]
    rows = []
    for s in plasticity_streams(view):
        naive = naive_key(view, s)
        ref = {}
        if naive is not None:
            ref = {
                int(c.config["seed"]): stats.slope(range(len(_at_end(c))), _at_end(c))
                for c in view.group(s, naive).ok
                if len(_at_end(c)) >= 2
            }
        for m in view.methods_of(s):
            g = view.group(s, m)
            ok = [c for c in g.ok if len(_at_end(c)) >= 2]
            curves = [_at_end(c) for c in ok]
            if not curves:
                continue
            iv = stats.slope_interval(curves)
            peak = stats.t_interval([stats.peak_slope(c) for c in curves])
            if not iv.excludes_zero():
                trend = "no detectable trend" if math.isfinite(iv.lo) else "n/a (one seed)"
            else:
                trend = "**declines** (plasticity loss)" if iv.hi < 0 else "rises"
            if m == naive:
                vs = "(the reference)"
            else:
                diffs = [
                    stats.slope(range(len(_at_end(c))), _at_end(c)) - ref[int(c.config["seed"])]
                    for c in ok
                    if int(c.config["seed"]) in ref
                ]
                d = stats.t_interval(diffs)
                vs = stats.fmt_interval(d) if diffs else "no shared seeds"
                if d.excludes_zero():
                    vs += " (loses plasticity faster)" if d.hi < 0 else " (slower)"
            rows.append(
                [
                    view.stream_label(s),
                    m,
                    g.stat(lambda c: _at_end(c)[0]).fmt(),
                    g.stat(lambda c: _at_end(c)[-1]).fmt(),
                    stats.fmt_interval(iv),
                    stats.fmt_interval(peak),
                    vs,
                    str(iv.n),
                    trend,
                ]
            )
    return md_table(header, rows) if rows else ""


def commits(view: View) -> list[tuple[str, Optional[bool], int]]:
    """(commit, dirty flag or None, number of cells) for every commit found in the cells."""
    count: dict[tuple[str, Optional[bool]], int] = {}
    for r in view.results + view.tuning:
        v = r.versions
        key = (str(v.get("git_commit", "unknown")), v.get("git_dirty"))
        count[key] = count.get(key, 0) + 1
    return [(c, d, n) for (c, d), n in sorted(count.items(), key=lambda kv: -kv[1])]
