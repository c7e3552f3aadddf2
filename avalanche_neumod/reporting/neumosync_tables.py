"""NeuMoSync's alpha diagnostics as a report table (issue 13).

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
    layers = sorted({k.split("/")[3] for k in curves}, key=lambda s: (len(s), s))
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
