"""``report.md`` from a run folder: tables, figures and the generated comparison section.

Reads saved results only (``runs/NAME/cells/*.json`` and ``manifest.json``), so a
report can be regenerated from runs alone, anywhere.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Union

from ..experiment.results import load_manifest, load_results
from . import figures, tables
from .claims import claims
from .results_view import View, num


def _fmt_s(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    m, sec = divmod(int(round(s)), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else (f"{m} min {sec:02d} s" if m else f"{sec} s")


def _runs_section(view: View) -> list[str]:
    man = view.manifest
    lines = ["## How these results were produced", ""]
    invs = man.get("invocations") or []
    for inv in invs:
        lines.append(
            f"- `{inv.get('command', '?')}` ({inv.get('launcher', '?')}, "
            f"jobs {inv.get('jobs', 1)}):"
            f" started {inv.get('started', '?')}, wall time {_fmt_s(num(inv.get('wall_s')))}, "
            f"{len(inv.get('cells_planned') or [])} cell(s) run, "
            f"{len(inv.get('cells_skipped') or [])} skipped as finished, "
            f"status {inv.get('status', '?')}"
        )
    cell_s = sum(num(r.get("timings", {}).get("total_s")) for r in view.results)
    vers = {}
    for r in view.results:
        for k, v in (r.get("versions") or {}).items():
            vers.setdefault(k, set()).add(str(v))
    seeds = sorted({r["config"]["seed"] for r in view.results})
    lines += [
        f"- {len(view.results)} cell(s): {len(view.streams)} stream(s) x "
        f"{len(view.methods)} method(s) x seeds {seeds}; summed cell time {_fmt_s(cell_s)}.",
        "- Versions: " + ", ".join(f"{k} {'/'.join(sorted(v))}" for k, v in sorted(vers.items())),
        "- Every cell's exact configuration is in its JSON file (`cells/<cell>.json`, key "
        "`config`); mean (std) are over seeds (numpy std, ddof 0); seeds that diverged, "
        "collapsed (NGM gains saturated) or failed are not averaged and are flagged.",
        "",
    ]
    return lines


def build_report(run_dir: Union[str, Path], out: Union[str, Path]) -> str:
    """The markdown text of the report (figures written into ``out``)."""
    run_dir, out = Path(run_dir), Path(out)
    view = View(load_results(run_dir), load_manifest(run_dir))
    suite = (view.manifest or {}).get("suite") or {}
    title = suite.get("name") or run_dir.name
    md = [f"# Suite `{title}` (preset `{suite.get('preset', '?')}`)", ""]
    if suite.get("description"):
        md += [suite["description"], ""]

    md += ["## Average final accuracy", "", tables.final_accuracy_table(view), ""]
    t = tables.recurring_table(view)
    if t:
        md += ["## Final accuracy on the recurring task (Figure 4)", "", t, ""]
    t = tables.table1(view)
    if t:
        md += [
            "## Adaptation speed and knowledge transfer (Table 1 format, percent)",
            "",
            "BKT/FKT at b = β/2, b = β and their mean over b = 0..β; LCA_0, LCA_F, LCA_B; "
            "average final accuracy. Mean (std) over seeds.",
            "",
            t,
            "",
            "## LCA_F and accuracy (Table 2 format, fractions)",
            "",
            tables.table2(view),
            "",
        ]
    t = tables.ngm_table(view, "ngm")
    if t:
        md += [
            "## Stability gap (NGM-SGD's Table 1 format, percent)",
            "",
            "Scored with NGM-SGD's own convention (block-wise on the tracked experience: avg-ACC,"
            " avg-min-ACC over blocks 0..T-2, WC-ACC, avg-SG), per seed, then mean (std) over "
            "seeds. avg-SG is the authors' formula: negative when the tracked accuracy never "
            "falls below its value at a switch, undefined (NaN) when that value is 0; NaN "
            "seeds are left out of the mean. De Lange's convention follows.",
            "",
            t,
            "",
            "De Lange et al.'s convention (min-ACC over earlier experiences):",
            "",
            tables.ngm_table(view, "de_lange"),
            "",
        ]

    fig_specs = [
        (figures.accuracy_per_step, "Accuracy at each training step (Figure 1 style)"),
        (figures.final_accuracy_bars, "Final accuracy per method and stream (Figure 3 style)"),
        (figures.recurring_accuracy, "Recurring-task accuracy (Figure 4 style)"),
        (figures.accuracy_at_end, _at_end_caption(view)),
        (figures.stability_gap_curves, "Stability-gap curves"),
        (figures.ngm_gains, "NGM gains over time"),
        (figures.neumosync_alphas, "NeuMoSync alphas over time"),
    ]
    figs = []
    for fn, caption in fig_specs:
        p = fn(view, out)
        if p is not None:
            figs.append((p, caption))
    if figs:
        md += ["## Figures", ""]
        for p, caption in figs:
            md += [f"### {caption}", "", f"![{caption}]({p.name})", ""]

    c = claims(view)
    if c:
        md += [
            "## Comparison with the papers' claims",
            "",
            "Generated from the numbers above (means over seeds); the papers' runs are at "
            "paper scale, these at this preset's.",
            "",
            c,
            "",
        ]
    problems = tables.problem_list(view)
    md += ["## Cells", "", tables.status_table(view), ""]
    if problems:
        md += ["Diverged or failed cells:", "", problems, ""]
    md += [
        "## Cost per method",
        "",
        "Wall time of training per iteration, from each cell's timings (cells run on this "
        "machine under whatever else it ran; `make bench` measures the performance bars).",
        "",
        tables.timing_table(view),
        "",
    ]
    md += _runs_section(view)
    return "\n".join(md)


def _at_end_caption(view: View) -> str:
    per_stream = [
        [view.group(s, m).method_name for m in view.methods_of(s)].count("NeuMoSync")
        for s in view.streams
    ]
    if any(n > 1 for n in per_stream):
        return "Ablations: accuracy on each experience after training on it (Figure 5 style)"
    return "Accuracy on each experience right after training on it (plasticity)"


def write_report(run_dir: Union[str, Path], out: Union[str, Path]) -> Path:
    """Write ``out/report.md`` (and its PNG figures) from the run folder ``run_dir``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text = build_report(run_dir, out)
    p = out / "report.md"
    p.write_text(text)
    return p
