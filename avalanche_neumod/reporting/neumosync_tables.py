"""NeuMoSync's alpha diagnostics as a report table.

Reads the values :class:`~avalanche_neumod.evaluation.neumosync_diagnostics.NeuMoSyncDiagnostics`
stored with each cell (``measures.other["neumosync_diagnostics"]``: one curve per
``<Name>/train_phase/train_stream/<layer>/<kind>``, a point after each training
experience) and prints their value after the last experience, averaged over the hidden
layers and the four alpha kinds, as mean ± 95% t-interval over seeds. Nothing is
recomputed from alphas here: the metric defined every number.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

from ..evaluation.neumosync_diagnostics import (
    alpha_saturation,
    alpha_scales,
    history_spread,
    range_used,
    task_switch_response,
)
from ..models.neumosync import DEFAULT_ALPHA_SCALE
from ..records import CellResult
from .run_view import View
from .tables import md_table

MEASURE = "neumosync_diagnostics"
#: (stored name, column header): the metric's names (docs/neumosync.md, Diagnostics)
COLUMNS = (
    ("AlphaStd", "std across neurons"),
    ("AlphaDev", "mean |α − neutral|"),
    ("AlphaInputWithin", "Δ two batches, same task"),
    ("AlphaInputBetween", "Δ this task vs previous"),
    ("AlphaTaskChange", "Δ end of task vs previous end"),
)


def _curves(c: CellResult) -> dict:
    return c.measures.other.get(MEASURE) or {}


def has_diagnostics(c: CellResult) -> bool:
    return bool(_curves(c))


def hidden_layers(curves: dict) -> list[str]:
    """The layers the diagnostics cover, but the last (the output layer, whose activity
    is not modulated: its gain and shift stay neutral)."""
    alpha = {name for name, _ in COLUMNS}  # not LogitScale / AlphaScale: no layers there
    layers = {k.split("/")[3] for k in curves if k.split("/")[0] in alpha}
    layers = sorted(layers, key=lambda s: (len(s), s))
    return layers[:-1] if len(layers) > 1 else layers


def last_value(name: str) -> Callable[[CellResult], float]:
    """``name`` after the last training experience, mean over hidden layers and kinds."""

    def get(c: CellResult) -> float:
        curves = _curves(c)
        keep = set(hidden_layers(curves))
        vals = [
            float(v["value"][-1])
            for k, v in curves.items()
            if k.split("/")[0] == name and k.split("/")[3] in keep and v.get("value")
        ]
        return sum(vals) / len(vals) if vals else math.nan

    return get


def _fmt(stat) -> str:
    """Mean ± half-width in 3 significant digits (the values span 1e-6 to 1)."""
    m = stat.mean
    if not math.isfinite(m):
        return stat.fmt()
    iv = stat.ci
    half = f" ± {iv.half:.2g}" if math.isfinite(iv.lo) else f" (n={iv.n})"
    return f"{m:.3g}{half}"


def alpha_diagnostics_table(view: View) -> Optional[str]:
    """One row per (stream, NeuMoSync row) with diagnostics; ``None`` when none has any."""
    rows = []
    for s in view.streams:
        for m in view.methods_of(s):
            g = view.group(s, m)
            if not any(has_diagnostics(c) for c in g.ok):
                continue
            row = [view.stream_label(s), m]
            row += [_fmt(g.stat(last_value(name))) for name, _ in COLUMNS]
            std, dev = g.stat(last_value("AlphaStd")).mean, g.stat(last_value("AlphaDev")).mean
            within = g.stat(last_value("AlphaInputWithin")).mean
            between = g.stat(last_value("AlphaInputBetween")).mean
            row.append(f"{std / dev:.3g}" if dev > 0 else "n/a")
            row.append(f"{between / within:.3g}" if within > 0 else "n/a")
            rows.append(row)
    if not rows:
        return None
    header = ["Stream", "Method", *(h for _, h in COLUMNS), "std / dev", "between / within"]
    return md_table(header, rows)


INTRO = (
    "NeuMoSync's alphas after the last task (`NeuMoSyncDiagnostics`, docs/neumosync.md), "
    "mean over the hidden layers and the four alphas (SM, WC, gain, shift), mean ± 95% "
    "t-interval over seeds. Neutral is (1, 0, 1, 0), where the InferenceNetwork is the "
    "MainNetwork. Per-neuron modulation shows as a std across neurons comparable to the "
    "deviation from neutral (std / dev near 1; near 0 is one value per layer); "
    "input-dependent modulation as alphas that differ more between two tasks' batches than "
    "between two batches of one task (between / within well above 1). On Random-Label "
    "streams every task shows the same images (only the labels change) and the alphas see "
    "inputs, not labels: the between-task difference is 0 there by construction."
)


# ------------------------------------------------------------- saturation, spread and scale

KINDS = ("sm", "wc", "gain", "shift")
KIND_LABELS = {"sm": "α_SM", "wc": "α_WC", "gain": "α_gain", "shift": "α_shift"}
NOT_RECORDED = "not recorded"
NO_CAP = "–"  # the alpha is off (an ablation) or has no fixed cap


def _alphas(c: CellResult) -> dict:
    h = c.measures.other.get("history", {}).get("alphas") or {}
    return h if h.get("iterations") else {}


def has_alphas(c: CellResult) -> bool:
    return bool(_alphas(c))


def cell_scales(c: CellResult) -> dict:
    """The cell's caps, ``a`` per layer and kind as the diagnostics metric recorded them
    (``AlphaScale``), else per kind from the cell's ``alpha_scale`` argument or the
    network's default (the cells stored before the caps were recorded all ran the
    default map ``neutral + a tanh(r)``, docs/neumosync.md)."""
    rec: dict = {}
    for key, v in _curves(c).items():
        parts = key.split("/")
        if parts[0] == "AlphaScale" and v.get("value"):
            rec.setdefault(parts[3], {})[parts[4]] = float(v["value"][-1])
    if rec:
        return rec
    args = c.config.get("method", {}).get("args", {})
    return alpha_scales(args.get("alpha_scale", DEFAULT_ALPHA_SCALE))


def _mean(vals: list) -> float:
    vals = [v for v in vals if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else math.nan


def saturation(kind: str, layer: Optional[str] = None, side: str = "both"):
    """Getter: the fraction of recorded iterations within 1 % of a cap (``side``: "upper",
    "lower" or "both"), mean over the layers where the alpha is on (or one ``layer``)."""

    def get(c: CellResult) -> float:
        sat = alpha_saturation(_alphas(c), cell_scales(c))
        vals = []
        for lay, kinds in sat.items():
            v = kinds.get(kind)
            if v is None or (layer is not None and lay != layer):
                continue
            vals.append(v["upper"] + v["lower"] if side == "both" else v[side])
        return _mean(vals)

    return get


def spread(kind: Optional[str] = None, layer: Optional[str] = None):
    """Getter: std across neurons over the deviation from neutral (``history_spread``),
    mean over the layers and kinds where the alpha is on (or one ``kind`` / ``layer``)."""

    def get(c: CellResult) -> float:
        sp = history_spread(_alphas(c))
        return _mean(
            [
                v
                for lay, kinds in sp.items()
                for k, v in kinds.items()
                if (layer is None or lay == layer) and (kind is None or k == kind)
            ]
        )

    return get


def used(kind: str, layer: str):
    """Getter: the mean ``|alpha - neutral| / a`` of one layer's alpha (``range_used``)."""

    def get(c: CellResult) -> float:
        v = range_used(_alphas(c), cell_scales(c)).get(layer, {}).get(kind)
        return math.nan if v is None else v

    return get


def switch_response(kind: str, layer: Optional[str] = None):
    """Getter: mean over the tasks after the first (and the layers where the alpha is on,
    or one ``layer``) of the mean alpha in the task's first 10 % of iterations minus that in
    its last 10 % (negative: the alpha drops at the switch and recovers)."""

    def get(c: CellResult) -> float:
        vals = []
        for t in task_switch_response(_alphas(c))[1:]:
            for lay, kinds in t["layers"].items():
                v = kinds[kind]
                if (layer is None or lay == layer) and None not in (v["early"], v["late"]):
                    vals.append(v["early"] - v["late"])
        return _mean(vals)

    return get


def logit_ratio(stat: str = "abs", index: int = -1):
    """Getter: the InferenceNetwork's logit scale over the MainNetwork's (``stat``: mean
    ``|logit|`` or the logits' std) after training experience ``index``."""

    def get(c: CellResult) -> float:
        curves = _curves(c)
        inf = curves[f"LogitScale/train_phase/train_stream/inference/{stat}"]["value"]
        main = curves[f"LogitScale/train_phase/train_stream/main/{stat}"]["value"]
        return float(inf[index]) / float(main[index])

    return get


def has_logit_scale(c: CellResult) -> bool:
    return "LogitScale/train_phase/train_stream/inference/abs" in _curves(c)


def _pct(stat) -> str:
    return stat.fmt(scale=100.0, digits=0) + ("" if not math.isfinite(stat.mean) else " %")


def _num(stat, digits: int = 2) -> str:
    return stat.fmt(scale=1.0, digits=digits)


def saturation_table(view: View) -> Optional[str]:
    """One row per (stream, NeuMoSync row) with a stored alpha history: saturation per
    alpha, spread, the task-switch response of alpha_SM and the logit-scale ratio (after
    task 1 and after the last task); ``None`` when no cell has an alpha history."""
    rows = []
    for s in view.streams:
        for m in view.methods_of(s):
            g = view.group(s, m)
            ok = [c for c in g.ok if has_alphas(c)]
            if not ok:
                continue
            row = [view.stream_label(s), m]
            for k in KINDS:
                st = g.stat(saturation(k))
                row.append(_pct(st) if math.isfinite(st.mean) else NO_CAP)
            row.append(_num(g.stat(spread()), 3))
            row.append(_num(g.stat(switch_response("sm"))))
            if any(has_logit_scale(c) for c in ok):
                first, last = g.stat(logit_ratio(index=0)), g.stat(logit_ratio())
                row.append(f"{_num(first, 1)} / {_num(last, 1)}")
            else:
                row.append(NOT_RECORDED)
            rows.append(row)
    if not rows:
        return None
    header = [
        "Stream",
        "Method",
        *(f"{KIND_LABELS[k]} at a cap" for k in KINDS),
        "spread (std / dev)",
        "α_SM at switch (first − last 10 %)",
        "logit scale, inference / main (task 1 / last)",
    ]
    return md_table(header, rows)


def saturation_detail_table(view: View) -> Optional[str]:
    """Per (stream, NeuMoSync row, layer) and alpha: the time at the upper / lower cap,
    the mean share of the range used and the task-switch response (seed means)."""
    rows = []
    for s in view.streams:
        for m in view.methods_of(s):
            g = view.group(s, m)
            ok = [c for c in g.ok if has_alphas(c)]
            if not ok:
                continue
            layers = list(_alphas(ok[0]).get("layers") or [])
            for lay in layers:
                row = [view.stream_label(s), m, lay]
                for k in KINDS:
                    up = g.stat(saturation(k, lay, "upper")).mean
                    if not math.isfinite(up):
                        row.append(NO_CAP)
                        continue
                    lo = g.stat(saturation(k, lay, "lower")).mean
                    u = g.stat(used(k, lay)).mean
                    sw = g.stat(switch_response(k, lay)).mean
                    sw_s = f"{sw:+.2f}" if math.isfinite(sw) else "n/a"
                    row.append(f"{100 * up:.0f} / {100 * lo:.0f} %, {u:.2f}, {sw_s}")
                rows.append(row)
    if not rows:
        return None
    header = ["Stream", "Method", "layer", *(KIND_LABELS[k] for k in KINDS)]
    return md_table(header, rows)


SATURATION_INTRO = (
    "Read from each cell's stored alpha history (the `alphas` of its histories: per layer, "
    "the mean and std of each alpha over the layer's neurons, every 50 iterations; "
    "docs/neumosync.md, Diagnosis) and its `LogitScale` diagnostics; mean ± 95% "
    "t-interval over seeds. *At a cap*: the fraction of recorded iterations at which a "
    "layer's mean alpha is within 1 % of the alpha's range from a cap, |mean − neutral| ≥"
    " 0.99 a (caps neutral ± a: `alpha_scale`, as the diagnostics metric records them), "
    "upper and lower caps together, mean over the layers where the alpha is on (*–*: off,"
    " i.e. ablated, or without a fixed cap). *Spread*: the std across neurons over the "
    "deviation from neutral, summed over the records, mean over layers and alphas. *At "
    "switch*: the mean alpha_SM in the first 10 % of a task's iterations minus that in "
    "its last 10 %, mean over tasks 2 to T and layers (negative: it drops at the switch)."
    " *Logit scale*: mean |logit| of the InferenceNetwork over that of the MainNetwork θ "
    "alone, on the diagnostics' fixed batch of the task, after task 1 and after the last "
    "task; cells stored before it was measured say *"
    f"{NOT_RECORDED}*."
)

SATURATION_DETAIL_INTRO = (
    "Per layer (the last is the output layer, whose gain and shift are not modulated), per "
    "alpha: the percentage of recorded iterations at the upper / lower cap, the mean share "
    "of the range used (mean over records of |mean − neutral| / a: 0 neutral, 1 at a cap) "
    "and the task-switch response (first − last 10 % of each task after the first; n/a where "
    "a task is too short to hold a record in each window); means over seeds."
)
