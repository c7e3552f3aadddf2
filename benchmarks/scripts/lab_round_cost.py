"""The lab round's cost in core-hours, from measured per-iteration costs (docs/suites.md,
"Cost of the lab round").

A cell costs ``iterations x t_iter(model) x ratio(model, method)`` plus its evaluations
(``test images forwarded x t_eval(model)``) and, with the transfer probes, ``probe(model)``
per experience. The constants are measured (docs/suites.md says where each comes from):
a clean Naive iteration from ``fit_task1.py`` at 1 thread, the method ratios from
``reports/perf.md`` (MLP) and from ``estimate_cost.py``'s short cells timed back to back
with Naive on the same stream (ConvNet), the evaluation and probe times from the same
short cells divided by their stream's load factor. Cells are counted from the suites'
expansion with the tuning procedure of ``experiment/tuning.py`` (``estimate_cost
.tuning_cell_counts``: without extensions, and with every extension taken). Cells that
several suites share (same stream, model, method and arguments, metrics, training settings
and tuning grid: what "compute once" would train once) are also counted once.

    PYTHONPATH=. python benchmarks/scripts/lab_round_cost.py
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

# estimate_cost.py lives beside this script or one folder up (benchmarks/)
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from estimate_cost import tuning_cell_counts  # noqa: E402

from avalanche_neumod.experiment import tuning  # noqa: E402
from avalanche_neumod.experiment.suite import expand, load_suite  # noqa: E402

SUITES = ("plasticity", "transfer", "recurring", "ablation", "maml")
T_ITER = {"mlp": 0.052 / 75, "convnet": 0.708 / 75}  # s per Naive iteration, batch 16
T_EVAL = {"mlp": 5e-6, "convnet": 1.5e-4}  # s per test image forwarded
PROBE = {"mlp": 0.35, "convnet": 27.0}  # s of transfer probes per experience
RATIO = {  # time per iteration / Naive's
    "mlp": {
        "EWC": 2.0,
        "CBP": 1.18,
        "CReLU": 1.0,
        "ReDo": 1.05,
        "L2InitEWC": 1.5,
        "ShrinkPerturb": 1.5,
        "NeuMoSync": 5.7,
        "MAML": 2.0,
    },
    "convnet": {
        "EWC": 1.8,
        "CBP": 1.0,
        "CReLU": 1.3,
        "ReDo": 1.4,
        "L2InitEWC": 2.0,
        "ShrinkPerturb": 1.35,
        "NeuMoSync": 2.7,
        "MAML": 2.0,
    },
}


def cell_seconds(cfg: dict) -> float:
    a = cfg["stream"]["args"]
    model = "convnet" if cfg["model"]["name"] == "convnet" else "mlp"
    n_exp = int(a.get("n_experiences", 10))
    n = int(a.get("n_samples") or a.get("train_size") or 10000)
    test = int(a.get("n_samples") or a.get("test_size") or 10000)
    bs, ep = int(cfg["train"]["mb_size"]), int(cfg["train"]["epochs"])
    iters = n_exp * -(-n // bs) * ep
    ratio = RATIO[model].get(cfg["method"]["name"], 1.0)
    s = iters * T_ITER[model] * ratio + n_exp * n_exp * test * T_EVAL[model]
    if (cfg.get("metrics") or {}).get("transfer"):
        s += n_exp * PROBE[model] * ratio
    return s


def _key(cfg: dict, grid: dict) -> str:
    keep = ("stream", "model", "metrics", "train", "optimizer", "eval")
    return json.dumps(
        [{k: cfg.get(k) for k in keep}, cfg["method"]["name"], cfg["method"]["args"], grid],
        sort_keys=True,
        default=str,
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("suites", nargs="*", default=list(SUITES))
    p.add_argument("--preset", default="lab")
    p.add_argument(
        "--epochs", nargs="*", default=[], help="STREAM_NAME=N: price that stream at N epochs"
    )
    p.add_argument("--streams", nargs="*", help="stream names to price (default: all)")
    a = p.parse_args(argv)
    epochs = {k: int(v) for k, v in (e.split("=") for e in a.epochs)}
    per = defaultdict(lambda: [0.0, 0.0, 0.0, 0, 0])
    seen: set = set()
    for name in a.suites:
        suite = load_suite(name, a.preset)
        grids = tuning.method_grids(suite.methods, suite.tune)
        tset = tuning.tune_settings(suite.tune)
        for cfg in expand(suite, seeds=suite.seeds[:1]):
            sname = cfg["stream"]["name"]
            if a.streams and sname not in a.streams:
                continue
            if sname in epochs:
                cfg["train"]["epochs"] = epochs[sname]
            g = grids.get(cfg["method_key"])
            t_min, t_max = tuning_cell_counts(g, tset)
            n_min, n_max = len(suite.seeds) + t_min, len(suite.seeds) + t_max
            sec = cell_seconds(cfg)
            acc = per[(name, cfg["stream"]["name"])]
            acc[0] += sec * n_min
            acc[1] += sec * n_max
            k = _key(cfg, g or {})
            if k not in seen:
                seen.add(k)
                acc[2] += sec * n_min
            acc[3] += n_min
            acc[4] += n_max
    print(
        "| suite | stream | cells (no extension / every extension) | core-h | "
        "core-h, every extension | core-h, shared cells once |"
    )
    print("|---|---|---|---|---|---|")
    tot = [0.0, 0.0, 0.0, 0, 0]
    for (name, s), v in sorted(per.items()):
        print(
            f"| {name} | {s} | {v[3]} / {v[4]} | {v[0] / 3600:.1f} | {v[1] / 3600:.1f} "
            f"| {v[2] / 3600:.1f} |"
        )
        tot = [x + y for x, y in zip(tot, v)]
    print(
        f"| **all** | | {tot[3]} / {tot[4]} | {tot[0] / 3600:.1f} | {tot[1] / 3600:.1f} "
        f"| {tot[2] / 3600:.1f} |"
    )
    by_stream: dict = defaultdict(lambda: [0.0, 0.0])
    for (_name, s), v in per.items():
        by_stream[s][0] += v[0]
        by_stream[s][1] += v[2]
    print("\n| stream (all suites) | core-h | core-h, shared cells once |\n|---|---|---|")
    for s, v in sorted(by_stream.items(), key=lambda kv: kv[1][0]):
        print(f"| {s} | {v[0] / 3600:.1f} | {v[1] / 3600:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
