"""The report's "comparison with the papers' claims", computed from the numbers.

Each paper claim that the runs can speak to becomes one line per stream: the paired
difference over the seeds both methods ran (mean, 95% percentile-bootstrap interval,
sign count) and the verdict it supports: "better" / "worse" only when the interval
excludes 0, "no detectable difference" otherwise, "too few seeds" under 3 shared seeds
(:mod:`.stats`), over the scores stored in the cells' records. Nothing about results is
written by hand: a claim with no data is left out.
"""

from __future__ import annotations

from typing import Callable, Optional

from . import stats
from .run_view import View
from .tables import (
    _transfer,
    accuracy_of,
    has_recurring,
    has_transfer,
    naive_key,
)

#: NeuMoSync's switches whose ``False`` removes a mechanism (Figure 5's ablations)
ABLATION_SWITCHES = ("consolidation", "plasticity_modulation", "activity_modulation", "neurosync")


def is_ablation(args: dict) -> bool:
    """A NeuMoSync row that switches a mechanism off (else a design variant)."""
    return any(args.get(k) is False for k in ABLATION_SWITCHES)


def _find(view: View, stream: str, name: str) -> list[str]:
    """Method keys on ``stream`` whose registry name is ``name`` (the plain one first)."""
    keys = [m for m in view.methods_of(stream) if view.group(stream, m).method_name == name]
    keys.sort(key=lambda m: (m != name, len(view.group(stream, m).method_args), m))
    return keys


def _paired(view: View, stream: str, a: str, b: str, get: Callable[[dict], float]):
    ga, gb = view.group(stream, a), view.group(stream, b)
    if ga is None or gb is None:
        return None
    return stats.paired_bootstrap(ga.by_seed(get), gb.by_seed(get))


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
    """One line: ``ours`` against each of ``others``, paired by seed; the verdict comes
    from the paired bootstrap interval (:func:`.stats.verdict`), never from the sign."""
    parts, verdicts = [], []
    for o in others:
        if o == ours:
            continue
        p = _paired(view, stream, ours, o, get)
        if p is None or p.diff.n == 0:
            continue
        v = stats.verdict(p, higher_better)
        verdicts.append(v)
        parts.append(f"vs {o}: {stats.describe(p, scale, unit)} → **{v}**")
    if not parts:
        return None
    n_b = verdicts.count("better")
    n_w = verdicts.count("worse")
    return (
        f"  - {view.stream_label(stream)}: {ours}'s {what} "
        + "; ".join(parts)
        + f". Detectably better than {n_b} of {len(verdicts)}, worse than {n_w}."
    )


def _section(title: str, lines: list[Optional[str]]) -> list[str]:
    lines = [x for x in lines if x]
    return [f"- {title}", *lines] if lines else []


def claims(view: View) -> str:
    """The generated comparison section (markdown), or "" when no claim applies."""
    out: list[str] = []
    final_lines, t1_lines, t2_lines, rec_lines, abl_lines = [], [], [], [], []
    var_lines: list[Optional[str]] = []
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
                for key in ("LCA_F", "LCA_B"):
                    t1_lines.append(_versus(view, s, full, with_t, _transfer(key), key))
                for key in ("FKT", "BKT"):
                    t1_lines.append(
                        _versus(view, s, full, with_t, _transfer(key, "mean"), f"{key}_mean")
                    )
                maml = _find(view, s, "MAML")
                if maml:
                    t2_lines.append(
                        _versus(
                            view, s, full, maml[:1], _transfer("LCA_F"), "LCA_F", scale=1.0, unit=""
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
                        lambda c: c.metrics["recurring"]["final"],
                        "final accuracy on the recurring task",
                    )
                )
            ablations = [m for m in nms[1:] if is_ablation(view.group(s, m).method_args)]
            if ablations:
                abl_lines.append(
                    _versus(view, s, full, ablations, accuracy_of, "average final accuracy")
                )
            for m in nms[1:]:
                if m not in ablations:
                    var_lines.append(
                        _versus(view, s, m, [full], accuracy_of, "average final accuracy")
                    )
    naive_lines = []
    for s in view.streams:
        nk = naive_key(view, s)
        if nk is None:
            continue
        for m in view.methods_of(s):
            if m != nk:
                naive_lines.append(_versus(view, s, m, [nk], accuracy_of, "average accuracy"))
    out += _section(
        "Every method against Naive (same optimizer, paired by seed): does it beat plain "
        "fine-tuning?",
        naive_lines,
    )
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
        "NeuMoSync design variants (ours, docs/neumosync.md): each variant against the "
        "default reconstruction.",
        var_lines,
    )
    # NGM-SGD's claims: the stability-gap section (:mod:`.ngm_study`), decided there
    return "\n".join(out)
