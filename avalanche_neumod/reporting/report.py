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
    if view.tuning:
        lines.append(
            f"- {len(view.tuning)} tuning cell(s) on seeds "
            f"{sorted({r['config']['seed'] for r in view.tuning})} (disjoint from the "
            'reported seeds; see "Optimizers and tuning"), summed cell time '
            f"{_fmt_s(sum(num(r.get('timings', {}).get('total_s')) for r in view.tuning))}."
        )
    found = tables.commits(view)
    lines.append(
        "- Code: "
        + "; ".join(
            f"commit `{c[:12]}`"
            + {True: " (dirty: uncommitted changes)", False: " (clean)"}.get(d, "")
            + f" for {n} cell(s)"
            for c, d, n in found
        )
        + (
            " — **more than one commit: the cells were not all made by the same code**"
            if len(found) > 1
            else ""
        )
    )
    lines += [
        f"- {len(view.results)} cell(s): {len(view.streams)} stream(s) x "
        f"{len(view.methods)} method(s) x seeds {seeds}; summed cell time {_fmt_s(cell_s)}.",
        "- Versions: " + ", ".join(f"{k} {'/'.join(sorted(v))}" for k, v in sorted(vers.items())),
        "- Every cell's exact configuration is in its JSON file (`cells/<cell>.json`, key "
        "`config`); mean ± 95% t-interval half-width over seeds; seeds that diverged or "
        "failed are not averaged and are flagged.",
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

    md += [
        "## Average final accuracy",
        "",
        "Mean ± half-width of the 95% Student-t interval over the reported seeds "
        "(`(n=1)`: one seed, no interval); std is kept in each cell's JSON and "
        "`Stat.std`.",
        "",
        tables.final_accuracy_table(view),
        "",
    ]
    md += _evidence_sections(view, out)
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
            "seeds. De Lange's convention follows.",
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
            "Generated from the numbers above: each comparison is paired by seed (the mean "
            "difference, its 95% percentile-bootstrap interval over 10,000 resamples of the "
            "seeds, the paired t-interval, and the sign count); the verdict is better/worse "
            "only when both intervals exclude 0, else no detectable difference (too few seeds "
            "under 3 shared seeds). "
            "The papers' runs are at paper scale, these at this preset's.",
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


def _evidence_sections(view: View, out: Path) -> list[str]:
    """Issue 12: tuning and optimizers, mechanism activity, plasticity loss."""
    md = [
        "## Optimizers and tuning",
        "",
        "Every method trains with the suite's optimizer family (NeuMoSync included; NGM-SGD's "
        "optimizer is its mechanism); the settings below are those of the reported cells.",
        "",
        tables.tuning_table(view),
        "",
        "## Mechanism activity",
        "",
        "At the end of the stream, mean ± 95% t-interval over seeds: units replaced by CBP "
        "and recycled by ReDo, distance of the parameters from their initial values (L2Init "
        "and Shrink & Perturb pull it down), L2Init's penalty as a share of the last "
        "minibatch's loss; the fraction of dormant hidden units (tau = 0.1) and the effective "
        "rank of the penultimate features after the first and the last task. Last column: "
        "whether the cells equal the Naive row's bit for bit (same stream and seed).",
        "",
        tables.activity_table(view),
        "",
    ]
    same = tables.naive_identical_list(view)
    if same:
        md += ["**Identical to Naive:**", "", same, ""]
    t = tables.slope_table(view)
    if t:
        md += [
            "## Plasticity loss (accuracy right after each task)",
            "",
            "Per memorisation and drift stream: the accuracy on each task right after "
            "training on it, its least-squares slope against the task index (percentage "
            "points per task) fitted per seed, and the 95% t-interval over the seeds' slopes "
            "(the seeds are the independent replicates; a task's points within one seed are "
            "not). A slope whose interval lies below 0 is plasticity loss.",
            "",
            t,
            "",
        ]
        p = figures.plasticity_loss(view, out)
        if p is not None:
            md += [f"![Plasticity loss]({p.name})", ""]
    return md


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
