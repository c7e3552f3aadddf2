"""Figures (PNG, matplotlib Agg) from saved results, each only when the runs have its data.

- :func:`accuracy_per_step`: training accuracy at each step, task boundaries
  marked (NeuMoSync's Figure 1);
- :func:`final_accuracy_bars`: average final accuracy per method and stream (Figure 3);
- :func:`accuracy_at_end`: accuracy on each experience right after training on it,
  per method (the plasticity curve; with ablation variants, Figure 5);
- :func:`recurring_accuracy`: accuracy on the recurring task after each experience (Figure 4);
- :func:`ngm_gains`: NGM gains over time; :func:`neumosync_alphas`: NeuMoSync alphas.

The tracked stability-gap curves are drawn by :mod:`.ngm_study`.

Curves are averaged over the seeds that finished, with a +-1 std band; error bars and
the plasticity bands are 95% t-intervals. Every method has one colour in every report
(:data:`METHOD_COLOURS`, :func:`method_colour`), and curve panels fit their y-range to
the data.
"""

from __future__ import annotations

import io
import math
import textwrap
import zlib
from pathlib import Path
from typing import Any, Callable, Optional

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402 - matplotlib's own dependency

from .results_view import View, num  # noqa: E402
from .tables import accuracy_of  # noqa: E402

DPI = 110
LINESTYLES = ("-", "--", ":", "-.")


def _colors(n: int):
    """``n`` distinct colours (for what is not a method: layers, kinds)."""
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


# One colour per method in every report (a method's key, as the suites name it). The
# reference rows are black/grey; NeuMoSync and its variants are reds and purples.
METHOD_COLOURS = {
    "Naive": "#000000",
    "FastNaive": "#555555",
    "SGD": "#000000",
    "EWC": "#1f77b4",
    "CBP": "#2ca02c",
    "CReLU": "#ff7f0e",
    "ReDo": "#17becf",
    "L2Init": "#8c564b",
    "L2InitEWC": "#8c564b",
    "ShrinkPerturb": "#bcbd22",
    "NeuMoSync": "#d62728",
    "NGMSGD": "#9467bd",
    "NGM-SGD": "#9467bd",
    "momentum-SGD": "#7f7f7f",
    "Adam": "#e377c2",
    "MAML": "#1a55ff",
    "SI": "#aec7e8",
    "LwF": "#98df8a",
    "Replay": "#ffbb78",
    "GEM": "#c5b0d5",
}
# the other methods (ablation and study variants, users' methods): a fixed colour from
# their name, so the same variant has the same colour in every report
_OTHER = [plt.get_cmap("tab20b")(i) for i in range(20)]


def method_colour(method: str):
    """The method's colour, the same in every figure of every report."""
    if method in METHOD_COLOURS:
        return METHOD_COLOURS[method]
    return _OTHER[zlib.crc32(method.encode()) % len(_OTHER)]


def method_colours(methods) -> dict:
    return {m: method_colour(m) for m in methods}


def _auto_ylim(ax, lows, highs, pct: bool) -> None:
    """A y-range fitted to the data (a flat line on a 0-100 axis shows nothing), padded,
    within [0, 100] for percentages."""
    lo = np.nanmin(lows) if len(lows) else np.nan
    hi = np.nanmax(highs) if len(highs) else np.nan
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return
    pad = max(1.0 if pct else 1e-3, 0.08 * (hi - lo))
    lo, hi = lo - pad, hi + pad
    if pct:
        lo, hi = max(-1.0, lo), min(101.0, hi)
    ax.set_ylim(lo, hi)


def _grid(n: int, width: float = 5.0, height: float = 3.6):
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    w = max(6.0, width * cols)
    fig, axes = plt.subplots(rows, cols, figsize=(w, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _boundaries(ax, xs, label: bool = True) -> None:
    for i, x in enumerate(xs):
        if x <= 0:
            continue
        ax.axvline(
            x, color="0.55", ls=":", lw=1, label="task boundary" if label and i <= 1 else None
        )
        label = False


def _save(fig, out: Path, name: str, bottom: float = 0.0) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    p = out / name
    fig.tight_layout(rect=(0, bottom, 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, dpi=DPI, format="png")
    plt.close(fig)
    # A 256-colour palette: a line plot has few colours, and this keeps reports/ small
    # (about a third of the size of matplotlib's RGBA file, visually the same).
    buf.seek(0)
    with Image.open(buf) as im:
        im.convert("RGB").quantize(256).save(p, format="PNG", optimize=True)
    return p


def _mean_curve(ys: list[list[float]]):
    n = min(len(y) for y in ys)
    arr = np.array([[num(v) for v in y[:n]] for y in ys], dtype=float)
    return np.nanmean(arr, 0), np.nanstd(arr, 0)


def _legend(fig, axes) -> float:
    """One legend for all panels, below them; returns the figure fraction it takes."""
    handles, labels = {}, []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in handles:
                handles[lab] = h
                labels.append(lab)
    if not handles:
        return 0.0
    ncol = min(len(labels), 5)
    nrow = math.ceil(len(labels) / ncol)
    fig.legend(
        [handles[lab] for lab in labels], labels, loc="lower center", ncol=ncol, frameon=False
    )
    return min(0.4, (0.15 + 0.25 * nrow) / fig.get_figheight())


def _title(fig, text: str) -> None:
    """A suptitle wrapped to the figure's width."""
    width = max(30, int(fig.get_figwidth() * 11))
    fig.suptitle(textwrap.fill(text, width))


def _panels(
    view: View, streams, get: Callable[[dict], Any], keep: Callable[[Any], bool]
) -> list[tuple[str, list]]:
    """Per stream (with something to draw): per method the kept ``get(cell)`` of its
    finished cells, ``[(stream, [(method, [item, ...]), ...]), ...]``."""
    panels = []
    for s in streams:
        lines = []
        for m in view.methods_of(s):
            items = [x for x in (get(c) for c in view.group(s, m).ok) if keep(x)]
            if items:
                lines.append((m, items))
        if lines:
            panels.append((s, lines))
    return panels


def _curve_figure(
    view: View,
    out: Path,
    name: str,
    title: str,
    ylabel: str,
    get: Callable[[dict], Optional[tuple[list, list, list]]],
    xlabel: str = "training iterations",
    pct: bool = True,
) -> Optional[Path]:
    """Per stream a panel; per method the seed-mean curve ``get(cell) -> (x, y, bounds)``."""
    panels = _panels(view, view.streams, get, lambda g: bool(g) and len(g[0]) > 0)
    if not panels:
        return None
    fig, axes = _grid(len(panels))
    colors = method_colours(view.methods)
    scale = 100.0 if pct else 1.0
    for ax, (s, lines) in zip(axes, panels):
        bounds = None
        lows, highs = [], []
        for m, got in lines:
            x = np.asarray(got[0][0][: min(len(g[0]) for g in got)], dtype=float)
            mu, sd = _mean_curve([g[1] for g in got])
            ax.plot(
                x,
                mu * scale,
                color=colors[m],
                lw=1.4,
                label=m,
                ls=LINESTYLES[view.methods.index(m) % 4],  # coinciding methods stay visible
                marker="o" if len(x) <= 30 else None,
                ms=3,
            )
            if len(got) > 1:
                ax.fill_between(
                    x, (mu - sd) * scale, (mu + sd) * scale, color=colors[m], alpha=0.15
                )
            lows.append(np.nanmin((mu - sd) * scale) if len(mu) else np.nan)
            highs.append(np.nanmax((mu + sd) * scale) if len(mu) else np.nan)
            bounds = bounds or got[0][2]
        _boundaries(ax, bounds or [])
        ax.set_title(view.stream_label(s))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_xlim(left=0)
        if xlabel == "experience":
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        _auto_ylim(ax, lows, highs, pct)
        ax.grid(alpha=0.25)
    _title(fig, title + " (band: ±1 std over seeds; y-range fitted to the data)")
    return _save(fig, out, name, bottom=_legend(fig, axes))


def accuracy_per_step(view: View, out: Path) -> Optional[Path]:
    """Training (minibatch) accuracy at each step, averaged over ``log_every`` steps."""

    def get(c):
        t = c.curves.get("train")
        if not t or not t.get("iteration"):
            return None
        return t["iteration"], t["accuracy"], t.get("boundaries", [])

    return _curve_figure(
        view,
        out,
        "accuracy_per_step.png",
        "Training accuracy at each step (dotted: task boundaries)",
        "train accuracy (%)",
        get,
    )


def final_accuracy_bars(view: View, out: Path) -> Optional[Path]:
    """Grouped bars: streams on x, one bar per method, the half-width of the 95%
    t-interval over seeds as error bars; each stream's label says which accuracy."""
    from .tables import ACCURACY_SHORT, accuracy_kinds

    if not view.results:
        return None
    streams, methods = view.streams, view.methods
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(streams) * len(methods) + 2.5), 4.2))
    width = 0.8 / max(1, len(methods))
    colors = method_colours(methods)
    kinds = accuracy_kinds(view)
    for j, m in enumerate(methods):
        mu, sd, xs = [], [], []
        for i, s in enumerate(streams):
            g = view.group(s, m)
            if g is None:
                continue
            st = g.stat(accuracy_of)
            xs.append(i + (j - (len(methods) - 1) / 2) * width)
            mu.append(100 * st.mean if math.isfinite(st.mean) else 0.0)
            half = st.ci.half
            sd.append(100 * half if math.isfinite(half) else 0.0)
            if not math.isfinite(st.mean):
                ax.text(
                    xs[-1],
                    1,
                    "div." if st.n_diverged else "coll." if st.n_collapsed else "n/a",
                    rotation=90,
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
        ax.bar(xs, mu, width, yerr=sd, color=colors[m], label=m, capsize=2, ecolor="0.5")
    ax.set_xticks(range(len(streams)))
    ax.set_xticklabels(
        [
            view.stream_label(s)
            + (f"\n({ACCURACY_SHORT.get(kinds[s], kinds[s])})" if s in kinds else "")
            for s in streams
        ],
        rotation=15,
        ha="right",
    )
    ax.set_ylabel("average accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Average accuracy (mean ± half-width of the 95% t-interval over seeds)")
    ax.grid(axis="y", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return _save(fig, out, "final_accuracy.png")


def accuracy_at_end(
    view: View,
    out: Path,
    name: str = "accuracy_at_end.png",
    title: str = "Accuracy on each experience right after training on it",
) -> Optional[Path]:
    """Per method, accuracy on experience k after training on it, against k."""

    def get(c):
        d = c.metrics.get("accuracy_at_end")
        if not d or len(d) < 2:
            return None
        return list(range(len(d))), d, []

    return _curve_figure(view, out, name, title, "accuracy (%)", get, xlabel="experience")


def recurring_accuracy(view: View, out: Path) -> Optional[Path]:
    """Accuracy on the recurring task R after each experience; R's turns shaded."""

    def get(c):
        r = c.metrics.get("recurring")
        if not r or not r.get("after_each"):
            return None
        return list(range(len(r["after_each"]))), r["after_each"], []

    return _curve_figure(
        view,
        out,
        "recurring_accuracy.png",
        "Accuracy on the recurring task after each experience",
        "accuracy on recurring task (%)",
        get,
        xlabel="experience",
    )


def _history_panels(view: View, key: str):
    out = []
    for s in view.streams:
        for m in view.methods_of(s):
            for c in view.group(s, m).ok:
                h = c.measures.other.get("history", {}).get(key)
                if h:
                    out.append((s, m, c, h))
                    break
    return out


def ngm_gains(view: View, out: Path) -> Optional[Path]:
    """Mean gain per layer against iterations (first seed of each NGM cell)."""
    panels = _history_panels(view, "gains")
    if not panels:
        return None
    fig, axes = _grid(len(panels))
    for ax, (s, m, c, h) in zip(axes, panels):
        x = h["iteration"]
        for i, (layer, ys) in enumerate(h["layers"].items()):  # dashes show coinciding layers
            ax.plot(x[: len(ys)], ys, lw=1.3, ls=LINESTYLES[i % 4], label=f"layer {layer}")
        _boundaries(ax, h.get("boundaries", []))
        ax.set_title(f"{view.stream_label(s)}: {m} (seed {c.seed})")
        ax.set_xlabel("training iterations")
        ax.set_ylabel("mean gain g")
        ax.grid(alpha=0.25)
        ax.legend(fontsize=7)
    _title(fig, "NGM gains over time (dotted: task boundaries)")
    return _save(fig, out, "ngm_gains.png")


ALPHA_KINDS = ("sm", "wc", "gain", "shift")  # NeuMoSync's order (docs/neumosync.md)


def _kind_name(kind: str) -> str:
    return kind.upper() if kind in ("sm", "wc") else kind


def _alpha_series(h: dict) -> tuple[list, dict]:
    """x (iterations) and ``{(kind, layer): [mean ...]}`` from NeuMoSync's recorded alphas
    (``measures.history.alphas``)."""
    pts = h.get("iterations") or []
    x = [p["iteration"] for p in pts]
    series: dict = {}
    for p in pts:
        for layer, kinds in p["layers"].items():
            for kind, (mean, _std) in kinds.items():
                series.setdefault((kind, layer), []).append(mean)
    return x, series


def neumosync_alphas(view: View, out: Path) -> Optional[Path]:
    """Mean alpha per layer over training, one panel per alpha kind, per stream (first seed)."""
    panels = [p for p in _history_panels(view, "alphas") if _alpha_series(p[3])[0]]
    if not panels:
        return None
    present = {k for p in panels for k, _ in _alpha_series(p[3])[1]}
    kinds = [k for k in ALPHA_KINDS if k in present] + sorted(present - set(ALPHA_KINDS))
    fig, axes = plt.subplots(
        len(panels), len(kinds), figsize=(3.6 * len(kinds), 3.0 * len(panels)), squeeze=False
    )
    for row, (s, m, c, h) in zip(axes, panels):
        x, series = _alpha_series(h)
        bounds = c.curves.get("train", {}).get("boundaries", [])
        layers = h.get("layers") or sorted({lay for _, lay in series})
        colors = _colors(len(layers))
        for ax, kind in zip(row, kinds):
            for i, (col, layer) in enumerate(zip(colors, layers)):
                ys = series.get((kind, layer))
                if ys:
                    ax.plot(
                        x[: len(ys)],
                        ys,
                        lw=1.3,
                        color=col,
                        ls=LINESTYLES[i % 4],
                        label=f"layer {layer}",
                    )
            _boundaries(ax, bounds)
            ax.set_title(f"{view.stream_label(s)}, {m}: alpha_{_kind_name(kind)}", fontsize=9)
            ax.set_xlabel("training iterations")
            ax.set_ylabel(f"mean alpha_{_kind_name(kind)}")
            ax.grid(alpha=0.25)
    _title(fig, "NeuMoSync alphas over time (mean over neurons; dotted: task boundaries)")
    return _save(fig, out, "neumosync_alphas.png", bottom=_legend(fig, list(axes.flat)))


def plasticity_loss(view: View, out: Path, name: str = "plasticity_loss.png") -> Optional[Path]:
    """The papers' Figure 1/3 reading of plasticity loss: per memorisation or drift stream,
    the accuracy on each task right after training on it against the task index (seed mean,
    95% t-interval band), with the least-squares line of the seed-mean (its slope in the
    legend is the mean of the per-seed slopes; the table gives their interval)."""
    from . import stats
    from .tables import plasticity_streams

    def at_end(cell: dict) -> list[float]:
        return [num(v) for v in cell.metrics.get("accuracy_at_end") or []]

    panels = _panels(view, plasticity_streams(view), at_end, lambda c: len(c) >= 2)
    if not panels:
        return None
    fig, axes = _grid(len(panels))
    colors = method_colours(view.methods)
    for ax, (s, lines) in zip(axes, panels):
        for m, curves in lines:
            n = min(len(c) for c in curves)
            arr = np.array([c[:n] for c in curves], dtype=float) * 100
            x = np.arange(1, n + 1)
            mu = np.nanmean(arr, 0)
            iv = stats.slope_interval([list(r) for r in arr])
            ls = LINESTYLES[view.methods.index(m) % 4]
            ax.plot(
                x,
                mu,
                color=colors[m],
                ls=ls,
                marker="o",
                ms=3,
                lw=1.2,
                label=f"{m} ({iv.mean:+.2f}/task)",
            )
            if len(arr) > 1:
                half = np.array([stats.t_interval(arr[:, k]).half for k in range(n)])
                ax.fill_between(x, mu - half, mu + half, color=colors[m], alpha=0.12)
            ok = np.isfinite(mu)
            if ok.sum() >= 2:
                b, a = np.polyfit(x[ok], mu[ok], 1)
                ax.plot(x, a + b * x, color=colors[m], lw=0.9, ls=(0, (1, 2)))
        ax.set_title(view.stream_label(s))
        ax.set_xlabel("task")
        ax.set_ylabel("accuracy right after the task (%)")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(alpha=0.25)
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    _title(
        fig,
        "Plasticity loss: accuracy on each task right after training on it "
        "(dotted: least-squares fit; band: 95% t-interval over seeds)",
    )
    return _save(fig, out, name)


def accuracy_matrices(view: View, out: Path, name: str = "accuracy_matrices.png") -> Optional[Path]:
    """Per stream (rows) and method (columns): the seed-mean accuracy matrix, row k =
    after training experience k, column j = test experience j (percent)."""
    cells = []
    for s in view.streams:
        row = []
        for m in view.methods_of(s):
            mats = [c.metrics.get("accuracy_matrix") for c in view.group(s, m).ok]
            mats = [np.array([[num(v) for v in r] for r in a], float) for a in mats if a]
            shapes = {a.shape for a in mats}
            if mats and len(shapes) == 1 and min(mats[0].shape) >= 2:
                row.append((m, 100 * np.nanmean(np.stack(mats), 0), len(mats)))
        if row:
            cells.append((s, row))
    if not cells:
        return None
    ncol = max(len(r) for _, r in cells)
    fig, axes = plt.subplots(
        len(cells),
        ncol,
        figsize=(2.3 * ncol + 1.2, 2.6 * len(cells) + 0.8),
        squeeze=False,
        layout="constrained",
    )
    im = None
    for i, (s, row) in enumerate(cells):
        for j in range(ncol):
            ax = axes[i][j]
            if j >= len(row):
                ax.set_visible(False)
                continue
            m, mat, n = row[j]
            im = ax.imshow(mat, vmin=0, vmax=100, cmap="viridis", aspect="auto")
            ax.set_title(f"{view.stream_label(s)}\n{m} (n={n})", fontsize=7)
            if i == len(cells) - 1 or j >= len(cells[i + 1][1]):
                ax.set_xlabel("test experience", fontsize=7)
            if j == 0:
                ax.set_ylabel("after training exp.", fontsize=7)
            ax.tick_params(labelsize=6)
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="accuracy (%)")
    fig.suptitle("Accuracy matrices (mean over seeds): row k after training experience k")
    out.mkdir(parents=True, exist_ok=True)
    p = out / name
    fig.savefig(p, dpi=DPI)
    plt.close(fig)
    return p


def _lca_curve(rows, which: str, T: int) -> Optional[np.ndarray]:
    a = np.array([[num(v) for v in r] for r in rows], float) if rows else None
    if a is None or a.ndim != 2 or len(a) < 2:
        return None
    ks = {"forward": range(1, len(a)), "backward": range(0, len(a) - 1)}.get(which, range(len(a)))
    return np.nanmean(a[list(ks)], 0)


LCA_PANELS = (
    ("A_main", "forward", "new task during its first β batches (LCA_F)"),
    ("A_final", "backward", "old task, probe from the final state (LCA_B)"),
    ("A_ref", "all", "reference probe from the initial state (LCA_0)"),
)


def lca_curves(view: View, out: Path, name: str = "lca_curves.png") -> Optional[Path]:
    """The learning curves behind Table 1's LCA columns: accuracy against the batches b =
    0..β trained on a task, averaged over the tasks each score averages and over seeds."""
    from .tables import has_transfer

    streams = [
        s
        for s in view.streams
        if any(has_transfer(c) for m in view.methods_of(s) for c in view.group(s, m).ok)
    ]
    if not streams:
        return None
    colors = method_colours(view.methods)
    fig, axes = plt.subplots(len(streams), 3, figsize=(13.0, 3.2 * len(streams)), squeeze=False)
    for i, s in enumerate(streams):
        for j, (key, which, what) in enumerate(LCA_PANELS):
            ax = axes[i][j]
            lows, highs = [], []
            for m in view.methods_of(s):
                curves = []
                for c in view.group(s, m).ok:
                    t = c.measures.transfer
                    if t is not None:
                        cur = _lca_curve(getattr(t, key), which, len(t.tasks or []))
                        if cur is not None:
                            curves.append(cur)
                if not curves:
                    continue
                n = min(len(c) for c in curves)
                mu = 100 * np.nanmean(np.stack([c[:n] for c in curves]), 0)
                ax.plot(
                    np.arange(n),
                    mu,
                    color=colors[m],
                    ls=LINESTYLES[view.methods.index(m) % 4],
                    lw=1.3,
                    label=m,
                )
                lows.append(np.nanmin(mu))
                highs.append(np.nanmax(mu))
            _auto_ylim(ax, lows, highs, True)
            ax.set_title(f"{view.stream_label(s)}: {what}", fontsize=8)
            ax.set_xlabel("batches trained on the task (b)")
            ax.set_ylabel("accuracy (%)")
            ax.grid(alpha=0.25)
    _title(fig, "Learning curves behind Table 1 (mean over tasks and seeds)")
    return _save(fig, out, name, bottom=_legend(fig, axes.ravel().tolist()))
