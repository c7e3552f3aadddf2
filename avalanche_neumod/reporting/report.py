"""``report.md`` from a run folder: tables, figures and the generated comparison section.

Reads saved results only (``runs/NAME/cells/*.json.gz`` and ``manifest.json``), so a
report can be regenerated from runs alone, anywhere. It never mixes suites
silently: a folder holding cells of several suites (``neumod run --force-mixed``)
gets one section per suite under a warning. Damaged files are skipped and named,
and an invocation killed while ``running`` is shown as interrupted with what it
finished.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Optional, Union

from ..experiment.lock import holder_alive, read_lock
from ..experiment.run_folder import DamagedFile, load_manifest, scan_results
from . import figures, neumosync_tables, ngm_study, paper_values, tables
from .claims import claims
from .run_view import View, num

NOTES = "notes.md"  # hand-written notes beside a report, appended to it


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
        lines.append(_invocation_line(inv, view))
    cell_s = sum(num(r.timings.get("total_s")) for r in view.results)
    vers = {}
    for r in view.results:
        for k, v in r.versions.items():
            vers.setdefault(k, set()).add(str(v))
    seeds = sorted({r.seed for r in view.results})
    if view.tuning:
        lines.append(
            f"- {len(view.tuning)} tuning cell(s) on seeds "
            f"{sorted({r.seed for r in view.tuning})} (disjoint from the "
            'reported seeds; see "Optimizers and tuning"), summed cell time '
            f"{_fmt_s(sum(num(r.timings.get('total_s')) for r in view.tuning))}."
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
        "- Every cell's exact configuration is in its JSON file (`cells/<cell>.json.gz`, key "
        "`config`); mean ± 95% t-interval half-width over seeds; seeds that diverged, "
        "collapsed (NGM gains saturated) or failed are not averaged and are flagged.",
        "",
    ]
    return lines


def _iso(t: Optional[str]) -> Optional[datetime]:
    try:
        return datetime.fromisoformat(str(t))
    except ValueError:
        return None


def invocation_state(inv: dict, lock: Optional[dict]) -> str:
    """The invocation's status; ``running`` only while its process holds the folder's lock
    (or runs on a host this one cannot check), else ``interrupted``."""
    st = inv.get("status", "?")
    if st != "running":
        return st
    if lock and lock.get("invocation") == inv.get("id") and holder_alive(lock) is not False:
        return "running"
    return "interrupted"


def _invocation_line(inv: dict, view: View) -> str:
    planned = inv.get("cells_planned") or []
    state = invocation_state(inv, view.lock)
    wall = _fmt_s(num(inv.get("wall_s")))
    done = [r for r in view.results if r.cell_id in set(planned)]
    if state in ("running", "interrupted") or inv.get("status") == "running":
        ends = [_iso(r.finished) for r in done]
        ends = [e for e in ends if e is not None]
        start = _iso(inv.get("started"))
        if wall == "?" and ends and start is not None:
            wall = f"at least {_fmt_s((max(ends) - start).total_seconds())} (to its last cell)"
        what = f"{len(done)} of {len(planned)} planned cell(s) finished"
        if state == "interrupted":
            what += " (killed before the end: `neumod run ... --resume` finishes the rest)"
    else:
        what = f"{len(planned)} cell(s) run"
    return (
        f"- `{inv.get('command', '?')}` ({inv.get('launcher', '?')}, "
        f"jobs {inv.get('jobs', 1)}): started {inv.get('started', '?')}, wall time {wall}, "
        f"{what}, {len(inv.get('cells_skipped') or [])} skipped as finished, status {state}"
    )


def _suite_key(r: dict) -> tuple[str, str]:
    cfg = r.get("config") or {}
    return (str(cfg.get("suite", "?")), str(cfg.get("preset", "?")))


def _mixed_configs(results: list[dict]) -> list[str]:
    """(stream, method) pairs whose seeds were run with different configurations."""
    seen: dict[tuple, dict] = {}
    out = []
    skip = ("cell_id", "seed", "stream_label", "method_label")
    for r in results:
        cfg = r["config"]
        if cfg.get("tuning"):  # a tuning cell differs from the reported ones by design
            continue
        key = (*_suite_key(r), cfg.get("stream_key"), cfg.get("method_key"))
        body = {k: v for k, v in cfg.items() if k not in skip}
        if key in seen and seen[key] != body:
            out.append(f"{key[2]} x {key[3]} (suite `{key[0]}`)")
        seen.setdefault(key, body)
    return sorted(set(out))


def build_report(
    run_dir: Union[str, Path], out: Union[str, Path], notes: Optional[list[str]] = None
) -> str:
    """The markdown text of the report (figures written into ``out``). ``notes`` receives
    the warnings (damaged files skipped, suites mixed, interrupted runs)."""
    run_dir, out = Path(run_dir), Path(out)
    notes = [] if notes is None else notes
    results, damaged = scan_results(run_dir)
    for e in damaged:
        notes.append(f"skipped {e}")
    try:
        manifest = load_manifest(run_dir)
    except DamagedFile as e:
        notes.append(f"{e}: the report has no run history")
        manifest = None
    lock = read_lock(run_dir)
    if lock and holder_alive(lock) is not False:
        notes.append(
            f"a neumod run is writing into {run_dir} now (pid {lock.get('pid', '?')} on "
            f"{lock.get('host', '?')}): this report shows the cells finished so far"
        )
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        groups.setdefault(_suite_key(r), []).append(r)
    msuite = (manifest or {}).get("suite") or {}
    main_key = (str(msuite.get("name")), str(msuite.get("preset")))
    keys = sorted(groups, key=lambda k: (k != main_key, k))
    for pair in _mixed_configs(results):
        notes.append(f"cells of {pair} were run with different configurations (see their JSON)")

    if len(keys) <= 1:
        view = View(results, manifest)
        view.lock = lock
        title = (keys[0][0], keys[0][1]) if keys else (msuite.get("name") or run_dir.name, "?")
        md = [f"# Suite `{title[0]}` (preset `{title[1]}`)", ""]
        md += _warnings(notes)
        if msuite.get("description") and (not keys or keys[0] == main_key):
            md += [msuite["description"], ""]
        if not keys or keys[0] == main_key:
            md += _coverage(msuite, results)
        md += _body(view, out, out)
        md += _runs_section(view)
        return "\n".join(md)

    names = ", ".join(f"`{k[0]}` (preset `{k[1]}`)" for k in keys)
    notes.append(f"{run_dir} holds cells of {len(keys)} suites: {names}; reported apart")
    md = [f"# Run folder `{run_dir.name}`: {len(keys)} suites", ""]
    md += _warnings(notes)
    for i, k in enumerate(keys):
        view = View(groups[k], manifest if k == main_key else None)
        view.lock = lock
        md += [f"# Suite `{k[0]}` (preset `{k[1]}`): {len(groups[k])} cell(s)", ""]
        if k == main_key and msuite.get("description"):
            md += [msuite["description"], ""]
        md += _body(view, out / f"suite{i + 1}_{k[0]}_{k[1]}", out)
    view = View(results, manifest)
    view.lock = lock
    md += _runs_section(view)
    return "\n".join(md)


def _coverage(msuite: dict, results: list[dict]) -> list[str]:
    """A line naming the suite's streams and methods that have no cell (tuning or
    reported) in this folder (a run limited with ``--streams``/``--methods``, or one still
    going); nothing when the folder covers the whole suite."""
    ran = [r.get("config") or {} for r in results]
    streams = {c.get("stream_key") for c in ran}
    methods = {c.get("method_key") for c in ran}
    labels = {k: (v or {}).get("label") or k for k, v in (msuite.get("streams") or {}).items()}
    no_streams = [labels.get(k, k) for k in msuite.get("stream_order") or [] if k not in streams]
    no_methods = [m for m in msuite.get("method_order") or [] if m not in methods]
    if not (no_streams or no_methods):
        return []
    parts = []
    if no_streams:
        parts.append("streams " + ", ".join(no_streams))
    if no_methods:
        parts.append("methods " + ", ".join(no_methods))
    return [
        f"**Coverage**: this folder holds part of the suite; not run here: {'; '.join(parts)}. "
        "The tables below show what was run.",
        "",
    ]


def _warnings(notes: list[str]) -> list[str]:
    if not notes:
        return []
    return ["> **Warning**", ">"] + [f"> - {n}" for n in notes] + [""]


def _body(view: View, fig_dir: Path, out: Path) -> list[str]:
    """Tables, figures, claims, cells and costs of one suite's cells."""
    md = [
        "## Average accuracy",
        "",
        "Each column says which accuracy: at the end of the stream (the final accuracy), or "
        "right after each task (a memorisation stream's reading; its end-of-stream value "
        "is shown beside it). Mean ± half-width of the 95% Student-t interval over the "
        "reported seeds "
        "(`(n=1)`: one seed, no interval); std is kept in each cell's JSON and "
        "`Stat.std`.",
        "",
        tables.final_accuracy_table(view),
        "",
    ]
    md += _evidence_sections(view, fig_dir, out)
    t = tables.recurring_table(view)
    if t:
        md += ["## Final accuracy on the recurring task (Figure 4)", "", t, ""]
    t = tables.table1(view)
    if t:
        md += [
            "## Adaptation speed and knowledge transfer (Table 1 format, percent)",
            "",
            "BKT/FKT at b = β/2, b = β and their mean over b = 0..β; LCA_0, LCA_F, LCA_B; "
            "average accuracy (the stream's reading: see Average accuracy). Mean ± half-width "
            "of the 95% Student-t interval over the reported seeds.",
            "",
            t,
            "",
            "## LCA_F and accuracy (Table 2 format, fractions)",
            "",
            tables.table2(view),
            "",
        ]
    md += paper_values.sections(view)  # the paper's numbers beside ours
    md += ngm_study.section(view, fig_dir, out)  # the stability gap (docs/ngm.md)

    fig_specs = [
        (figures.accuracy_per_step, "Accuracy at each training step (Figure 1 style)"),
        (figures.final_accuracy_bars, "Final accuracy per method and stream (Figure 3 style)"),
        (figures.recurring_accuracy, "Recurring-task accuracy (Figure 4 style)"),
        (figures.accuracy_at_end, _at_end_caption(view)),
        (figures.accuracy_matrices, "Accuracy matrices (after training k, on test experience j)"),
        (figures.lca_curves, "Learning curves behind Table 1's LCA columns"),
        (figures.ngm_gains, "NGM gains over time"),
        (figures.neumosync_alphas, "NeuMoSync alphas over time"),
    ]
    figs = []
    for fn, caption in fig_specs:
        p = fn(view, fig_dir)
        if p is not None:
            figs.append((p, caption))
    if figs:
        md += ["## Figures", ""]
        for p, caption in figs:
            md += [f"### {caption}", "", f"![{caption}]({p.relative_to(out).as_posix()})", ""]

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
    return md


def _evidence_sections(view: View, fig_dir: Path, out: Path) -> list[str]:
    """The evidence a fair comparison needs: tuning and optimizers, mechanism activity,
    plasticity loss."""
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
    t = tables.other_activity_table(view)
    if t:
        md += [
            "## Other mechanism activity",
            "",
            "What the methods' own mechanisms reported (their `mechanism_activity` hook) "
            "beyond the table above, after each training task, mean ± 95% t-interval over "
            "seeds.",
            "",
            t,
            "",
        ]
    t = neumosync_tables.alpha_diagnostics_table(view)
    if t:
        md += ["## NeuMoSync alpha diagnostics", "", neumosync_tables.INTRO, "", t, ""]
    t = neumosync_tables.saturation_table(view)
    if t:
        md += ["## NeuMoSync alphas: saturation, spread and logit scale", ""]
        md += [neumosync_tables.SATURATION_INTRO, "", t, ""]
        detail = neumosync_tables.saturation_detail_table(view)
        md += ["<details><summary>Per layer and alpha</summary>", ""]
        md += [neumosync_tables.SATURATION_DETAIL_INTRO, "", detail, "", "</details>", ""]
    t = tables.slope_table(view)
    if t:
        md += [
            "## Plasticity loss (accuracy right after each task)",
            "",
            "Per memorisation and drift stream: the accuracy on each task right after "
            "training on it, its least-squares slope against the task index (percentage "
            "points per task) fitted per seed, and the 95% t-interval over the seeds' slopes "
            "(the seeds are the independent replicates; a task's points within one seed are "
            "not). A slope whose interval lies below 0 is plasticity loss. The slope from the "
            "peak is fitted per seed from its best task to the last (an under-trained start "
            "that rises before it falls does not dilute the decline); the comparison with "
            "Naive is the per-seed difference of the all-task slopes over the seeds both "
            "ran, with its 95% t-interval: above 0, the method loses plasticity more slowly "
            "than Naive.",
            "",
            t,
            "",
        ]
        p = figures.plasticity_loss(view, fig_dir)
        if p is not None:
            md += [f"![Plasticity loss]({p.relative_to(out).as_posix()})", ""]
    return md


def _at_end_caption(view: View) -> str:
    per_stream = [
        [view.group(s, m).method_name for m in view.methods_of(s)].count("NeuMoSync")
        for s in view.streams
    ]
    if any(n > 1 for n in per_stream):
        return "Ablations: accuracy on each experience after training on it (Figure 5 style)"
    return "Accuracy on each experience right after training on it (plasticity)"


def write_report(run_dir: Union[str, Path], out: Union[str, Path], with_notes: bool = False):
    """Write ``out/report.md`` (and its PNG figures) from the run folder ``run_dir``; its
    path (and, ``with_notes``, the warnings the report starts with). A hand-written
    ``out/notes.md`` (e.g. a comparison with an earlier run) is appended, so it survives
    regeneration."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    text = build_report(run_dir, out, notes)
    if (out / NOTES).is_file():
        text += f"\n## Notes (hand-written, `{NOTES}`)\n\n" + (out / NOTES).read_text()
    p = out / "report.md"
    p.write_text(text)
    return (p, notes) if with_notes else p
