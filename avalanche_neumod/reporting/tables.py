"""Markdown tables from saved results, in the papers' formats (mean (std) over seeds).

Pure functions of a :class:`~avalanche_neumod.reporting.results_view.View`:

- :func:`final_accuracy_table`: average final accuracy per method and stream
  (NeuMoSync's Figure 3 numbers);
- :func:`table1`: NeuMoSync's Table 1 (BKT/FKT at beta/2, beta and their mean;
  LCA_0, LCA_F, LCA_B; average final accuracy), in percent;
- :func:`table2`: NeuMoSync's Table 2 (LCA_F and accuracy per stream), as fractions;
- :func:`ngm_table`: NGM-SGD's Table 1 (avg-ACC, avg-min-ACC, WC-ACC, avg-SG), in percent;
- :func:`recurring_table`: final accuracy on the recurring task (Figure 4's numbers);
- :func:`status_table`: cells that diverged or failed, and timings.

A seed that diverged or failed is never averaged in: the cell says how many did.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

from .results_view import Stat, View, num


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def accuracy_of(cell: dict) -> float:
    """The cell's average accuracy as its stream defines it (``metrics.avg_accuracy``)."""
    m = cell["metrics"]
    return num(m.get("avg_accuracy", m.get("avg_final_accuracy")))


def accuracy_kinds(view: View) -> dict[str, str]:
    kinds = {}
    for r in view.results:
        k = r.get("metrics", {}).get("avg_accuracy_kind")
        if k:
            kinds.setdefault(r["config"]["stream_key"], k)
    return kinds


ACCURACY_NOTE = {
    "final": "mean over experiences of the accuracy on each at the end of the stream",
    "end_of_task": "mean over experiences of the accuracy on each right after training on it",
}


def final_accuracy_table(view: View) -> str:
    """Rows: methods; columns: streams; average accuracy in percent, mean (std) over seeds."""
    header = ["Method"] + [view.stream_label(s) for s in view.streams]
    rows = []
    for m in view.methods:
        row = [m]
        for s in view.streams:
            g = view.group(s, m)
            row.append(g.stat(accuracy_of).fmt() if g else "")
        rows.append(row)
    kinds = accuracy_kinds(view)
    notes = [f"- {view.stream_label(s)}: {ACCURACY_NOTE.get(k, k)}" for s, k in kinds.items()]
    return md_table(header, rows) + (
        "\n\nAccuracy per stream:\n" + "\n".join(notes) if notes else ""
    )


def _transfer(key: str, at: Optional[str] = None) -> Callable[[dict], float]:
    """A Table 1 quantity from a cell's ``measures.transfer``."""

    def get(c: dict) -> float:
        t = c["measures"]["transfer"]
        if at is None:
            return num(t[key])
        arr = [num(v) for v in t[key]]
        beta = int(t["beta"])
        if at == "half":
            return arr[beta // 2]
        if at == "beta":
            return arr[beta]
        return float(sum(arr) / len(arr))  # mean over b = 0..beta

    return get


TABLE1_COLUMNS = [
    ("BKT_{β/2}", _transfer("bkt", "half")),
    ("BKT_β", _transfer("bkt", "beta")),
    ("BKT_mean", _transfer("bkt", "mean")),
    ("FKT_{β/2}", _transfer("fkt", "half")),
    ("FKT_β", _transfer("fkt", "beta")),
    ("FKT_mean", _transfer("fkt", "mean")),
    ("LCA_0", _transfer("lca_0")),
    ("LCA_F", _transfer("lca_f")),
    ("LCA_B", _transfer("lca_b")),
    ("Avg final acc", accuracy_of),
]


def has_transfer(c: dict) -> bool:
    return "transfer" in (c.get("measures") or {})


def table1(view: View) -> str:
    """NeuMoSync's Table 1, one block of rows per stream, in percent."""
    header = ["Method"] + [name for name, _ in TABLE1_COLUMNS]
    rows = []
    for s in view.streams:
        ms = [m for m in view.methods_of(s) if any(has_transfer(c) for c in view.group(s, m).cells)]
        if not ms:
            continue
        beta = _beta(view, s)
        rows.append([f"**{view.stream_label(s)}** (β = {beta})"] + [""] * len(TABLE1_COLUMNS))
        for m in ms:
            g = view.group(s, m)
            rows.append([m] + [g.stat(get).fmt() for _, get in TABLE1_COLUMNS])
    return md_table(header, rows) if rows else ""


def _beta(view: View, stream: str) -> str:
    for m in view.methods_of(stream):
        for c in view.group(stream, m).ok:
            if has_transfer(c):
                return str(c["measures"]["transfer"]["beta"])
    return "?"


def table2(view: View) -> str:
    """NeuMoSync's Table 2: LCA_F and accuracy per stream, as fractions, mean (std)."""
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
            row += [g.stat(_transfer("lca_f")).fmt(1.0), g.stat(accuracy_of).fmt(1.0)]
        rows.append(row)
    return md_table(header, rows)


def _sg(key: str, convention: str) -> Callable[[dict], float]:
    def get(c: dict) -> float:
        return num(c["measures"]["stability_gap"]["scores"][convention][key])

    return get


NGM_COLUMNS = [
    ("avg-ACC", "avg_acc"),
    ("avg-min-ACC", "avg_min_acc"),
    ("WC-ACC", "wc_acc"),
    ("avg-SG", "avg_sg"),
]


def has_sg(c: dict) -> bool:
    return "stability_gap" in (c.get("measures") or {})


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


def has_recurring(c: dict) -> bool:
    return "recurring" in (c.get("metrics") or {})


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
            row.append(g.stat(lambda c: c["metrics"]["recurring"]["final"]).fmt() if g else "")
        rows.append(row)
    return md_table(header, rows)


def status_table(view: View) -> str:
    """Per (stream, method): seeds finished / diverged / collapsed / failed, and mean wall
    time per cell."""
    header = ["Stream", "Method", "ok", "diverged", "collapsed", "failed", "time per cell (s)"]
    header.append("iterations")
    rows = []
    for s in view.streams:
        for m in view.methods_of(s):
            g = view.group(s, m)
            st = [c.get("status") for c in g.cells]
            t = Stat([num(c["timings"].get("total_s")) for c in g.cells], len(g.cells))
            its = Stat([num(c["metrics"].get("n_iterations")) for c in g.ok], len(g.cells))
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
            )
    return md_table(header, rows)


def _per_iteration(c: dict) -> float:
    its = num(c["metrics"].get("n_iterations"))
    train = sum(num(t) for t in c["timings"].get("train_s", []))
    return train / its if its > 0 else math.nan


REFERENCES = ("FastNaive", "Naive")


def _reference(view: View, stream: str):
    """The stream's fine-tuning reference: our ``FastNaive``, else Avalanche's ``Naive``."""
    for name in REFERENCES:
        for m in view.methods_of(stream):
            g = view.group(stream, m)
            if g.method_name == name and not g.method_args:
                return g
    return None


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
                    g.stat(lambda c: sum(num(t) for t in c["timings"]["train_s"])).fmt(
                        1.0, 1, False
                    ),
                    g.stat(lambda c: sum(num(t) for t in c["timings"]["eval_s"])).fmt(
                        1.0, 1, False
                    ),
                ]
            )
    return md_table(header, rows)


def problem_list(view: View) -> str:
    """One line per diverged, collapsed or failed cell, with where and why."""
    lines = []
    for r in view.results:
        st = r.get("status")
        if st == "diverged":
            d = r.get("diverged", {})
            lines.append(
                f"- `{r['cell_id']}`: **diverged** (loss {d.get('loss')}) at iteration "
                f"{d.get('iteration')}, experience {d.get('experience')}"
            )
        elif st == "collapsed":
            d = r.get("collapsed") or {}
            lines.append(
                f"- `{r['cell_id']}`: **collapsed** ({d.get('reason')}) from iteration "
                f"{d.get('iteration')}"
            )
        elif st != "ok":
            err = (r.get("error") or "").splitlines()
            lines.append(f"- `{r['cell_id']}`: **{st}**: {err[0] if err else ''}")
    return "\n".join(lines)


def fmt_pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.2f}"
