"""The report's "comparison with the papers' claims", computed from the numbers.

Each paper claim that the runs can speak to becomes one line per stream, stating
the claim and what these runs measured (the difference with its sign, and both
values). Nothing about results is written by hand: a claim with no data is left out.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

from .results_view import View
from .tables import _sg, _transfer, accuracy_of, has_recurring, has_sg, has_transfer


def _find(view: View, stream: str, name: str) -> list[str]:
    """Method keys on ``stream`` whose registry name is ``name`` (the plain one first)."""
    keys = [m for m in view.methods_of(stream) if view.group(stream, m).method_name == name]
    keys.sort(key=lambda m: (m != name, len(view.group(stream, m).method_args), m))
    return keys


def _mean(view: View, stream: str, method: str, get: Callable[[dict], float]) -> float:
    g = view.group(stream, method)
    return g.stat(get).mean if g else math.nan


def _pts(x: float, scale: float) -> str:
    return f"{x * scale:.2f}"


def _versus(
    view: View,
    stream: str,
    ours: str,
    others: list[str],
    get: Callable[[dict], float],
    what: str,
    higher_better: bool = True,
    scale: float = 100.0,
    unit: str = " points",
) -> Optional[str]:
    a = _mean(view, stream, ours, get)
    vals = {o: _mean(view, stream, o, get) for o in others if o != ours}
    vals = {o: v for o, v in vals.items() if math.isfinite(v)}
    if not math.isfinite(a) or not vals:
        return None
    parts = []
    for o, v in vals.items():
        d = a - v
        better = d > 0 if higher_better else d < 0
        word = "higher" if d > 0 else ("lower" if d < 0 else "equal")
        mark = "better" if better else ("worse" if d != 0 else "tie")
        parts.append(
            f"{word} than {o}'s by {abs(d) * scale:.2f}{unit} "
            f"({_pts(a, scale)} vs {_pts(v, scale)}; {mark})"
        )
    n_better = sum(1 for v in vals.values() if ((a > v) if higher_better else (a < v)))
    return (
        f"  - {view.stream_label(stream)}: {ours}'s {what} is "
        + "; ".join(parts)
        + f". {ours} is better than {n_better} of {len(vals)}."
    )


def _section(title: str, lines: list[Optional[str]]) -> list[str]:
    lines = [x for x in lines if x]
    return [f"- {title}", *lines] if lines else []


def claims(view: View) -> str:
    """The generated comparison section (markdown), or "" when no claim applies."""
    out: list[str] = []
    final_lines, t1_lines, t2_lines, rec_lines, abl_lines, sg_lines = [], [], [], [], [], []
    for s in view.streams:
        nms = _find(view, s, "NeuMoSync")
        ms = view.methods_of(s)
        if nms:
            full = nms[0]
            baselines = [m for m in ms if view.group(s, m).method_name not in ("NeuMoSync", "MAML")]
            final_lines.append(
                _versus(view, s, full, baselines, accuracy_of, "average final accuracy")
            )
            with_t = [m for m in baselines if any(has_transfer(c) for c in view.group(s, m).ok)]
            if any(has_transfer(c) for c in view.group(s, full).ok):
                for key, label in (("lca_f", "LCA_F"), ("lca_b", "LCA_B")):
                    t1_lines.append(_versus(view, s, full, with_t, _transfer(key), label))
                for key, label in (("fkt", "FKT_mean"), ("bkt", "BKT_mean")):
                    t1_lines.append(_versus(view, s, full, with_t, _transfer(key, "mean"), label))
                maml = _find(view, s, "MAML")
                if maml:
                    t2_lines.append(
                        _versus(
                            view, s, full, maml[:1], _transfer("lca_f"), "LCA_F", scale=1.0, unit=""
                        )
                    )
                    t2_lines.append(
                        _versus(
                            view, s, full, maml[:1], accuracy_of, "accuracy", scale=1.0, unit=""
                        )
                    )
            if any(has_recurring(c) for c in view.group(s, full).ok):
                rec_lines.append(
                    _versus(
                        view,
                        s,
                        full,
                        baselines,
                        lambda c: c["metrics"]["recurring"]["final"],
                        "final accuracy on the recurring task",
                    )
                )
            variants = nms[1:]
            if variants:
                abl_lines.append(
                    _versus(view, s, full, variants, accuracy_of, "average final accuracy")
                )
        ngm = _find(view, s, "NGMSGD")
        if ngm and any(has_sg(c) for c in view.group(s, ngm[0]).ok):
            others = [m for m in ms if m not in ngm and any(has_sg(c) for c in view.group(s, m).ok)]
            sg_lines.append(
                _versus(
                    view, s, ngm[0], others, _sg("avg_sg", "ngm"), "avg-SG", higher_better=False
                )
            )
            sg_lines.append(
                _versus(view, s, ngm[0], others, _sg("avg_min_acc", "ngm"), "avg-min-ACC")
            )
            sg_lines.append(_versus(view, s, ngm[0], others, _sg("wc_acc", "ngm"), "WC-ACC"))
            sg_lines.append(_versus(view, s, ngm[0], others, _sg("avg_acc", "ngm"), "avg-ACC"))
    out += _section(
        "NeuMoSync (Figure 3): higher final accuracy than the baselines (here: every other "
        "method on the stream).",
        final_lines,
    )
    out += _section(
        "NeuMoSync (Table 1): faster adaptation (higher LCA_F, LCA_B) through more knowledge "
        "transfer (higher FKT, BKT).",
        t1_lines,
    )
    out += _section(
        "NeuMoSync (Table 2): higher LCA_F and accuracy than MAML (as fractions).", t2_lines
    )
    out += _section("NeuMoSync (Figure 4): higher final accuracy on the recurring task.", rec_lines)
    out += _section(
        "NeuMoSync (Figure 5): removing any mechanism or NeuroSync lowers accuracy (full model "
        "against each ablation).",
        abl_lines,
    )
    out += _section(
        "NGM-SGD (its Table 1, NGM convention): a smaller stability gap (lower avg-SG) and higher "
        "avg-min-ACC and WC-ACC than SGD, momentum-SGD and Adam, at competitive avg-ACC.",
        sg_lines,
    )
    return "\n".join(out)
