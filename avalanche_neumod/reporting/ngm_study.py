"""The report's stability-gap section in NGM-SGD's study format (docs/ngm.md).

Reads each cell's stored ``measures["stability_gap"]`` (both conventions' scores and the
tracked curves) and ``metrics["avg_final_accuracy"]``; formats stored scores and recomputes
none of them. Per stream with a stability-gap measure:

- :func:`score_table`: avg-ACC, avg-min-ACC, WC-ACC, avg-SG (relative and absolute; NGM-SGD's
  convention), De Lange's min-ACC and the final average accuracy, mean ± half-width of the
  95% t-interval over seeds (:mod:`.stats`), a seed whose score is undefined counted apart;
- :func:`mean_curve_table`: NGM-SGD's scores of the seed-mean tracked curve (what the
  authors' tables score; :func:`~avalanche_neumod.evaluation.stability_gap.mean_curves`);
- :func:`claim_lines`: NGM-SGD against each other method, paired by seed; each verdict
  (better / worse / no detectable difference) comes from the paired intervals
  (:func:`.stats.verdict`), never from the sign of a difference, and the paper's claim
  (a smaller gap than Adam and momentum-SGD at accuracy not detectably lower) is decided
  from those verdicts;
- :func:`differences`: where the cells' configuration differs from the authors' protocol
  (:data:`AUTHORS`), read from the stored configurations.

:func:`task1_figure` (the tracked accuracy of every seed and their mean) and
:func:`after_switch_figure` (the first updates after each task switch) draw the curves;
:func:`section` assembles the markdown.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..evaluation.stability_gap import mean_curves, stability_gap_scores
from ..experiment import registry
from ..results import CellResult
from . import stats
from .figures import LINESTYLES, _boundaries, _grid, _legend, _save, _title, method_colours
from .results_view import Group, View, num
from .tables import md_table, ngm_table

# The authors' protocol (NGM-SGD's code; docs/ngm.md): per stream (experiences,
# iterations per experience, eta), and the settings shared by every stream.
AUTHORS_STREAMS = {
    "split_mnist": (5, 200, 0.4),
    "ngm_permuted_mnist": (3, 200, 0.3),
    "rotated_mnist": (3, 400, 0.5),
}
AUTHORS = {
    "seeds": "42..46 (5 runs from base seed 42)",
    "batch_size": 128,
    "lr": 0.01,
    "hidden_sizes": [400, 400],
    "eval_every": 1,
    "gamma": 0.9,
    "g0": 1.0,
    "g_init": "one",
}
# (column, stored key, where): NGM-SGD's convention unless "delange"; "final": metrics
COLUMNS = [
    ("avg-ACC", "avg_ACC", "ngm"),
    ("avg-min-ACC", "avg_min_ACC", "ngm"),
    ("WC-ACC", "WC_ACC", "ngm"),
    ("avg-SG", "avg_SG", "ngm"),
    ("avg-SG (abs, points)", "avg_SG_abs", "ngm"),
    ("min-ACC (De Lange)", "avg_min_ACC", "delange"),
    ("final avg acc (all tasks)", "avg_final_accuracy", "final"),
]
MEAN_CURVE_KEYS = [("avg-ACC", "avg_ACC"), ("avg-min-ACC", "avg_min_ACC"), ("WC-ACC", "WC_ACC")]
MEAN_CURVE_KEYS += [("avg-SG", "avg_SG"), ("avg-SG (abs, points)", "avg_SG_abs")]
# the paired comparisons: (label, stored NGM-convention key, higher is better)
CLAIM_SCORES = [("avg-SG", "avg_SG", False), ("avg-ACC", "avg_ACC", True)]
CLAIM_SCORES += [("WC-ACC", "WC_ACC", True)]
PAPER_BASELINES = ("Adam", "momentum-SGD")  # the claim's baselines (NGM-SGD's Table 1)
ZOOM = 50  # updates shown after each switch


# A cell (a :class:`~avalanche_neumod.results.CellResult`) is read through these three
# accessors only.


def config(cell: CellResult) -> dict:
    """The cell's stored configuration."""
    return cell.config


def sg_record(cell: CellResult) -> Optional[dict]:
    """The cell's stored stability-gap record as its mapping (curves, boundaries, tracker
    settings, ``scores[convention][name]``), None without one."""
    rec = cell.measures.stability_gap
    return None if rec is None else rec.to_dict()


def metric(cell: CellResult, key: str) -> float:
    """One of the cell's accuracy metrics (NaN when absent)."""
    return num(cell.metrics.get(key))


def has_sg(cell: CellResult) -> bool:
    """Whether the cell recorded a stability-gap measure."""
    return sg_record(cell) is not None


def score(key: str, where: str = "ngm") -> Callable[[dict], float]:
    """A stored score of a cell: ``scores[where][key]`` of its stability-gap record, or its
    accuracy metric ``key`` for ``where="final"``."""

    def get(c: CellResult) -> float:
        if where == "final":
            return metric(c, key)
        return num(sg_record(c)["scores"][where][key])

    return get


def sg_streams(view: View) -> list[str]:
    """The streams with a stability-gap measure in some finished cell."""
    return [
        s
        for s in view.streams
        if any(has_sg(c) for m in view.methods_of(s) for c in view.group(s, m).ok)
    ]


def _methods(view: View, stream: str) -> list[str]:
    return [m for m in view.methods_of(stream) if any(has_sg(c) for c in view.group(stream, m).ok)]


def label(g: Group) -> str:
    """The method's label in the suite (its key when none)."""
    return str(config(g.cells[0]).get("method_label") or g.method)


def optimizer_kind(g: Group) -> str:
    """What a method trains with: ``NGM-SGD``, ``SGD``, ``momentum-SGD``, ``Adam`` or the
    optimizer's name (from the stored configuration, not the method's key)."""
    if g.method_name == "NGMSGD":
        return "NGM-SGD"
    o = config(g.cells[0]).get("optimizer") or {}
    name = o.get("name", "sgd")
    if name == "sgd":
        return "momentum-SGD" if num(o.get("momentum", 0.0)) > 0 else "SGD"
    return {"adam": "Adam"}.get(name, name)


def fmt(g: Group, get: Callable[[dict], float]) -> str:
    """``mean ± h`` (percent, 95% t-interval over seeds) with ``[k NaN]`` for the finished
    seeds whose score is undefined (e.g. NGM-SGD's avg-SG with a zero reference)."""
    st = g.stat(get)
    n_nan = sum(1 for v in st.values if not math.isfinite(v))
    text = st.fmt(digits=1)
    return text + (f" [{n_nan} NaN]" if n_nan and text != "n/a" else "")


def score_table(view: View, stream: str) -> str:
    """Per method: the study's scores, mean ± 95% t-interval half-width over seeds."""
    rows = []
    for m in _methods(view, stream):
        g = view.group(stream, m)
        rows.append([label(g), str(len(g.ok))] + [fmt(g, score(k, w)) for _, k, w in COLUMNS])
    return md_table(["method", "seeds"] + [c for c, _, _ in COLUMNS], rows)


def _tracked(cell: CellResult) -> tuple[str, dict, list]:
    """The first tracked experience's id, its curve and the boundaries."""
    sg = sg_record(cell)
    first = min(sg["curves"], key=int)
    return first, sg["curves"][first], sg.get("boundaries", [])


def mean_curve(g: Group) -> Optional[tuple[int, list, list, list]]:
    """(experience, x, seed-mean accuracy, boundaries) of the first tracked curve over the
    finished seeds; None when they do not share their points."""
    cells = [c for c in g.ok if has_sg(c) and sg_record(c).get("curves")]
    if not cells:
        return None
    e, _, bounds = _tracked(cells[0])
    try:
        (x, acc) = mean_curves([{e: _tracked(c)[1]} for c in cells])[int(e)]
    except (ValueError, KeyError):
        return None
    return int(e), x, acc, bounds


def mean_curve_table(view: View, stream: str) -> str:
    """NGM-SGD's scores (percent) of each method's seed-mean tracked curve."""
    rows = []
    for m in _methods(view, stream):
        g = view.group(stream, m)
        mc = mean_curve(g)
        if mc is None:
            rows.append([label(g)] + ["n/a"] * len(MEAN_CURVE_KEYS))
            continue
        e, x, acc, bounds = mc
        sc = stability_gap_scores({e: (x, acc)}, bounds, "ngm", exp=e)
        rows.append(
            [label(g)]
            + [f"{100 * sc[k]:.1f}" if math.isfinite(sc[k]) else "NaN" for _, k in MEAN_CURVE_KEYS]
        )
    return md_table(["method"] + [c for c, _ in MEAN_CURVE_KEYS], rows)


def _wording(what: str, v: str) -> str:
    if what == "avg-SG" and v in ("better", "worse"):
        return f"{v} ({'smaller' if v == 'better' else 'larger'} gap)"
    return v


def claim_lines(view: View, stream: str) -> list[str]:
    """NGM-SGD against each other method on ``stream``, paired by seed (NGM - other), and
    the paper's claim decided from the verdicts; [] without an NGM-SGD row."""
    ms = _methods(view, stream)
    ngm = [m for m in ms if view.group(stream, m).method_name == "NGMSGD"]
    if not ngm:
        return []
    ours = view.group(stream, ngm[0])
    lines, holds = [], {}
    for m in ms:
        other = view.group(stream, m)
        if other.method_name == "NGMSGD":
            continue
        parts, verdicts = [], {}
        for what, key, higher in CLAIM_SCORES:
            p = stats.paired_bootstrap(ours.by_seed(score(key)), other.by_seed(score(key)))
            verdicts[what] = v = stats.verdict(p, higher)
            parts.append(f"{what} {stats.describe(p, digits=1)} → **{_wording(what, v)}**")
        lines.append(f"- vs {label(other)}: " + "; ".join(parts) + ".")
        kind = optimizer_kind(other)
        if kind in PAPER_BASELINES:
            if "too few seeds" in verdicts.values():
                holds[kind] = None
            else:
                holds[kind] = verdicts["avg-SG"] == "better" and verdicts["avg-ACC"] != "worse"
    if holds:
        n = sum(1 for v in holds.values() if v)
        if None in holds.values():
            word = "cannot be decided (too few paired seeds)"
        else:
            word = (
                "is **supported**"
                if n == len(holds)
                else "is **partly supported**"
                if n
                else "is **not supported**"
            )
        against = " and ".join(sorted(holds))
        yes = [k for k, v in holds.items() if v]
        lines.append(
            f"- The paper's claim on this stream (a smaller avg-SG than {against}, at avg-ACC "
            f"not detectably lower) {word}"
            + (f": it holds against {', '.join(sorted(yes))}." if yes and n < len(holds) else ".")
        )
    return lines


def _settings(view: View, stream: str) -> dict:
    """The stream's stored settings: experiences, iterations, batch, eta, tracker."""
    out: dict = {}
    info = view.info(stream)
    for m in view.methods_of(stream):
        g = view.group(stream, m)
        for c in g.ok:
            cfg = config(c)
            sg = sg_record(c) or {}
            args = (cfg.get("stream") or {}).get("args") or {}
            out.setdefault("n_experiences", len(sg.get("boundaries") or []) or None)
            out.setdefault("iterations", args.get("iterations", info.get("iterations")))
            out.setdefault("batch_size", args.get("batch_size", info.get("batch_size")))
            if g.method_name == "NGMSGD":
                out.setdefault("eta", (cfg.get("method") or {}).get("args", {}).get("eta"))
            break
    return out


def stream_header(view: View, stream: str) -> str:
    s = _settings(view, stream)
    parts = [
        f"{s.get('n_experiences', '?')} experiences x {s.get('iterations', '?')} iterations",
        f"batch {s.get('batch_size', '?')}",
    ]
    if s.get("eta") is not None:
        parts.append(f"NGM-SGD's eta = {s['eta']}")
    return ", ".join(parts) + "."


def differences(view: View) -> list[str]:
    """Where the stored cells differ from the authors' protocol (:data:`AUTHORS`)."""
    cells = [c for s in sg_streams(view) for m in _methods(view, s) for c in view.group(s, m).ok]
    if not cells:
        return []
    seeds = sorted({int(config(c)["seed"]) for c in cells})
    out = [
        f"- Seeds: {seeds}; the authors' scripts use {AUTHORS['seeds']}. Our streams draw "
        "their samples with their own seeded generators, so even equal seeds would not "
        "reproduce the authors' draws."
    ]
    sgs = [sg_record(c) for c in cells]
    samples = sorted({str(sg.get("samples_per_exp")) for sg in sgs})
    if samples == ["None"]:
        out.append("- Tracked test set: the full first-experience test set, as the authors'.")
    else:
        out.append(
            f"- Tracked test set: a seeded subset of {' / '.join(samples)} images per "
            "experience, drawn anew for each seed (to keep the per-update evaluation "
            "affordable on a shared CPU); the authors evaluate the full first-experience "
            "test set at every update (2115 images on Split-MNIST)."
        )
    every = sorted({int(sg.get("eval_every", 1)) for sg in sgs})
    if every != [AUTHORS["eval_every"]]:
        out.append(
            f"- The tracker evaluates every {'/'.join(map(str, every))} updates; the authors "
            "after every update, so minima between our points are missed (smaller gaps)."
        )
    tracked = sorted({tuple(sg.get("tracked") or []) for sg in sgs})
    if any(t != (0,) for t in tracked):
        out.append(
            "- Every seen experience is tracked (the authors track the first only); NGM-SGD's "
            "scores use the first experience's curve, De Lange's min-ACC all tracked curves."
        )
    out.append(
        "- Our curve has one more point, before the first update (the authors' starts after "
        "it); no NGM-convention score uses it (block 0 starts after it)."
    )
    for s in sg_streams(view):
        st = _settings(view, s)
        want = AUTHORS_STREAMS.get(str(_stream_name(view, s)))
        if want is None:
            out.append(f"- {view.stream_label(s)}: not one of the authors' MLP streams.")
            continue
        got = (st.get("n_experiences"), st.get("iterations"), st.get("eta"))
        if tuple(got) != want:
            out.append(
                f"- {view.stream_label(s)}: {got[0]} x {got[1]} iterations, eta {got[2]}; the "
                f"authors' {want[0]} x {want[1]}, eta {want[2]}."
            )
        if st.get("batch_size") not in (None, AUTHORS["batch_size"]):
            out.append(
                f"- {view.stream_label(s)}: batch {st['batch_size']}; the authors' "
                f"{AUTHORS['batch_size']}."
            )
        if _stream_name(view, s) == "rotated_mnist":
            out.append(
                f"- {view.stream_label(s)}: we did not have the authors' Rotated-MNIST script "
                f"to check its iteration count ({want[0]} x {want[1]} assumed, the stream's "
                "default) and its angles (0/80/160 degrees) against."
            )
    out += _model_and_optimizer_differences(cells)
    out.append(
        "- Across seeds we give the mean and 95% t-interval of the per-seed scores; the "
        "authors' tables score the seed-mean curve (the second table per stream does the same)."
    )
    groups = [view.group(s, m) for s in sg_streams(view) for m in _methods(view, s)]
    bad = sum(len(g.cells) - len(g.ok) for g in groups)
    if bad:
        out.append(
            f"- {bad} cell(s) diverged, collapsed (NGM gains saturated) or failed and are "
            "left out of every mean (see Cells); the authors' tables have no such filter."
        )
    return out


def _stream_name(view: View, stream: str) -> Optional[str]:
    for m in view.methods_of(stream):
        return (config(view.group(stream, m).cells[0]).get("stream") or {}).get("name", stream)
    return None


def _model_and_optimizer_differences(cells: list[CellResult]) -> list[str]:
    out = []
    models = sorted(
        {
            (
                (config(c).get("model") or {}).get("name", "?"),
                tuple((config(c).get("model") or {}).get("args", {}).get("hidden_sizes", [])),
            )
            for c in cells
        }
    )
    for name, hidden in models:
        if name != "ngm_mlp":
            out.append(f"- Model `{name}`, not the authors' MLP (`ngm_mlp`).")
        elif hidden and list(hidden) != AUTHORS["hidden_sizes"]:
            out.append(f"- Hidden sizes {list(hidden)}; the authors' {AUTHORS['hidden_sizes']}.")
    lrs = set()
    for c in cells:
        cfg = config(c)
        opt = cfg.get("optimizer") or {}
        args = (cfg.get("method") or {}).get("args") or {}
        lrs.add(num(args.get("lr") if registry.builds_own_optimizer(cfg) else opt.get("lr")))
        if cfg.get("method", {}).get("name") == "NGMSGD":
            for k in ("gamma", "g0", "g_init"):
                if k in args and args[k] != AUTHORS[k]:
                    out.append(f"- NGM-SGD's {k} = {args[k]}; the authors' {AUTHORS[k]}.")
    lrs = {v for v in lrs if math.isfinite(v)}
    if lrs and lrs != {AUTHORS["lr"]}:
        out.append(
            f"- Learning rates {sorted(lrs)}; the authors use {AUTHORS['lr']} for every optimizer."
        )
    return sorted(set(out), key=out.index)


# --------------------------------------------------------------------------- figures


def _panels(view: View) -> list[tuple[str, list[tuple[str, list[dict]]]]]:
    out = []
    for s in sg_streams(view):
        lines = []
        for m in _methods(view, s):
            cells = [c for c in view.group(s, m).ok if has_sg(c)]
            cells = [c for c in cells if sg_record(c).get("curves")]
            if cells:
                lines.append((m, cells))
        if lines:
            out.append((s, lines))
    return out


def _start(view: View):
    """(figure, axes, panels, method colours) with one panel per stream, or None."""
    panels = _panels(view)
    if not panels:
        return None
    fig, axes = _grid(len(panels), width=5.5, height=4.0)
    return fig, axes, panels, method_colours(view.methods)


def _finish(fig, axes, title: str, out: Path, name: str) -> Path:
    for ax in axes:
        ax.set_ylabel("test accuracy on experience 1 (%)")
        ax.grid(alpha=0.25)
    _title(fig, title)
    return _save(fig, out, name, bottom=_legend(fig, axes))


def task1_figure(view: View, out: Path, name: str = "task1_accuracy.png") -> Optional[Path]:
    """Per stream, each method's tracked accuracy on the first experience: every seed thin,
    the seed mean bold; task switches dotted."""
    start = _start(view)
    if start is None:
        return None
    fig, axes, panels, colors = start
    for ax, (s, lines) in zip(axes, panels):
        bounds: list = []
        for m, cells in lines:
            g = view.group(s, m)
            for c in cells:
                _, cur, bounds = _tracked(c)
                ax.plot(cur["x"], 100 * np.asarray(cur["acc"], float), color=colors[m], lw=0.4)
                ax.lines[-1].set_alpha(0.35)
            mc = mean_curve(g)
            if mc is not None:
                ax.plot(
                    mc[1],
                    100 * np.asarray(mc[2], float),
                    color=colors[m],
                    lw=1.4,
                    ls=LINESTYLES[view.methods.index(m) % 4],
                    label=f"{label(g)} (mean of {len(cells)})",
                )
        _boundaries(ax, bounds)
        ax.set_title(f"{view.stream_label(s)}: accuracy on experience 1")
        ax.set_xlabel("training updates")
        ax.set_ylim(-2, 102)
    title = "Tracked accuracy on the first experience (thin: seeds; bold: their mean)"
    return _finish(fig, axes, title, out, name)


def after_switch_figure(
    view: View, out: Path, name: str = "task1_after_switch.png", span: int = ZOOM
) -> Optional[Path]:
    """Per stream, each method's seed-mean tracked accuracy over the first ``span`` updates
    after each task switch (later switches darker): where the gap is."""
    start = _start(view)
    if start is None:
        return None
    fig, axes, panels, colors = start
    for ax, (s, lines) in zip(axes, panels):
        for m, _cells in lines:
            g = view.group(s, m)
            mc = mean_curve(g)
            if mc is None:
                continue
            _, x, acc, bounds = mc
            x, acc = np.asarray(x, float), 100 * np.asarray(acc, float)
            switches = [b for b in bounds[1:] if b > 0]
            for j, lo in enumerate(switches):
                sel = (x >= lo) & (x <= lo + span)
                ax.plot(
                    x[sel] - lo,
                    acc[sel],
                    color=colors[m],
                    lw=1.2,
                    alpha=0.35 + 0.65 * (j + 1) / len(switches),
                    ls=LINESTYLES[view.methods.index(m) % 4],
                    label=label(g) if j == 0 else None,
                )
        ax.set_title(f"{view.stream_label(s)}: first {span} updates after each switch")
        ax.set_xlabel("updates since the task switch")
    title = "Seed-mean accuracy on the first experience after each switch (later: darker)"
    return _finish(fig, axes, title, out, name)


# --------------------------------------------------------------------------- markdown

INTRO = (
    "Scores (percent) in NGM-SGD's own convention on the first experience's tracked curve, "
    "split into one block per experience: avg-ACC = mean of the block-final accuracies; "
    "avg-min-ACC = mean of the block minima over blocks 0..T-2; WC-ACC = (1/T) final + "
    "(1 - 1/T) avg-min-ACC; avg-SG = mean over switches k = 1..T-1 of SG_k = (A(end of k-1) - "
    "min of block k) / A(end of k-1) (the absolute drop in points beside it). This is the "
    "authors' formula: SG_k is negative when the accuracy never falls below its value at the "
    "switch, and undefined (NaN) when that value is 0; such seeds are counted as `[k NaN]` and "
    "left out of the mean. Block 0's minimum is taken while the first task is still being "
    "learned, so avg-min-ACC and WC-ACC also reward fast initial learning; 'min-ACC (De "
    "Lange)' is De Lange et al.'s instead: the minimum accuracy on the tracked earlier "
    "experiences after each was learned (the first experience alone when only it is "
    "tracked). The last column is the final accuracy averaged over every experience's full "
    "test set. Each cell: mean ± half-width of the 95% Student-t interval over the finished "
    "seeds (`(n=1)`: one seed). The second table scores the seed-mean curve (what the "
    "authors' tables do), which smooths single-seed dips and so gives smaller gaps. The "
    "comparisons are paired by seed (NGM-SGD - other): the mean difference, its 95% "
    "percentile-bootstrap interval and the paired t-interval; better / worse only when both "
    "intervals exclude 0, else no detectable difference (too few seeds under "
    f"{stats.MIN_PAIRED} shared seeds)."
)


def section(view: View, fig_dir: Path, out: Path) -> list[str]:
    """The stability-gap section (markdown lines; figures written into ``fig_dir``), or []
    when no cell recorded a stability-gap measure."""
    streams = sg_streams(view)
    if not streams:
        return []
    md = ["## Stability gap (NGM-SGD's study format, percent)", "", INTRO, ""]
    for s in streams:
        md += [f"### {view.stream_label(s)}", "", stream_header(view, s), ""]
        md += [score_table(view, s), "", "Scored on the seed-mean curve:", ""]
        md += [mean_curve_table(view, s), ""]
        claims = claim_lines(view, s)
        if claims:
            md += ["NGM-SGD against each method (paired by seed, NGM-SGD - other):", ""]
            md += claims + [""]
    md += [
        "### De Lange et al.'s convention",
        "",
        "min-ACC, WC-ACC and avg-SG over the tracked earlier experiences (WC-ACC needs the "
        "last experience's curve: n/a when only the first is tracked):",
        "",
        ngm_table(view, "delange"),
        "",
    ]
    figs = [
        (task1_figure(view, fig_dir), "Accuracy on the first experience during training"),
        (after_switch_figure(view, fig_dir), f"The first {ZOOM} updates after each switch"),
    ]
    for p, caption in figs:
        if p is not None:
            md += [f"![{caption}]({p.relative_to(out).as_posix()})", ""]
    md += ["### Where this differs from the authors' runs", ""] + differences(view) + [""]
    return md
