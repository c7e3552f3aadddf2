"""Estimate the cost of a suite preset's cells from short timed cells (docs/suites.md).

For every (stream, method) of the suite's preset, one short cell is run with the same
model, batch size, test set and metrics but 2 experiences of about 150 iterations each;
its training time per iteration and evaluation time per test experience are
extrapolated to the preset's iterations and evaluations (tuning cells: the procedure of
``experiment/tuning.py``, without extensions and with every extension taken):

    est = train_s/iteration * iterations + eval_s/(test experience evaluated) * n_exp^2
          + probe_s/experience * n_exp

(``probe_s``: the knowledge-transfer probes' time inside training, measured as the
difference with the same short cell without them, per experience). Cells of one
(stream, method name, metrics) are timed once and shared between suites.

    PYTHONPATH=. python benchmarks/scripts/estimate_cost.py plasticity transfer recurring \
        ablation maml --preset lab --out /tmp/lab_cost.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time

from avalanche_neumod.experiment import tuning
from avalanche_neumod.experiment.cell import run_cell
from avalanche_neumod.experiment.suite import expand, load_suite

SHORT_ITERS = 150  # per experience


def _short(cfg: dict) -> tuple[dict, int, int]:
    """The short version of ``cfg``, the preset's iterations and experiences."""
    c = copy.deepcopy(cfg)
    a = c["stream"]["args"]
    n_exp = int(a.get("n_experiences", 10))
    bs, ep = int(c["train"]["mb_size"]), int(c["train"]["epochs"])
    per_exp = a.get("n_samples") or a.get("train_size") or 10000
    iters = n_exp * -(-int(per_exp) // bs) * ep
    a["n_experiences"] = 2
    size = SHORT_ITERS * bs
    if "n_samples" in a:
        a["n_samples"] = min(int(a["n_samples"]), size)
        c["train"]["epochs"] = max(1, SHORT_ITERS // -(-a["n_samples"] // bs))
    else:
        a["train_size"] = size
        c["train"]["epochs"] = 1
    return c, iters, n_exp


def _time(cfg: dict, root) -> dict:
    t0 = time.perf_counter()
    r = run_cell(cfg, root=root)
    if r["status"] != "ok":
        raise RuntimeError(f"{cfg['cell_id']}: {r['status']}: {r.get('error')}")
    its = r["metrics"]["n_iterations"]
    return {
        "train_per_it": sum(r["timings"]["train_s"]) / its,
        "eval_per_test_exp": sum(r["timings"]["eval_s"]) / (2 * 2),
        "build_s": r["timings"].get("build_s", 0.0),
        "wall_s": time.perf_counter() - t0,
    }


def tuning_cell_counts(grid: dict | None, tset: dict) -> tuple[int, int]:
    """Tuning cells of one (stream, method) pair: without any grid extension, and with
    every extendable axis extended the allowed number of times (an upper bound): every
    point on the first tuning seed, the kept ones on the others, in each round."""
    if not grid:
        return 0, 0
    n_seeds, keep, ext = len(tset["seeds"]), tset["keep"], int(tset["extend"] or 0)

    def count(sizes: list[int], rounds: int) -> int:
        n = 1
        for k in sizes:
            n *= k
        kept = n if keep is None else min(keep, n) * rounds
        return n + min(n, kept) * (n_seeds - 1)

    sizes = [len(v) for v in grid.values()]
    grown = [len(v) + ext if tuning.extendable(list(v)) else len(v) for v in grid.values()]
    n_ext = sum(ext for v in grid.values() if tuning.extendable(list(v)))
    return count(sizes, 1), count(grown, 1 + n_ext)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("suites", nargs="+")
    p.add_argument("--preset", default="lab")
    p.add_argument("--data-root", default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--cache", default=None, help="JSON file of timed keys (reused if present)")
    args = p.parse_args(argv)
    cache: dict = {}
    if args.cache and os.path.exists(args.cache):
        with open(args.cache) as f:
            cache = json.load(f)
    rows = []
    for name in args.suites:
        suite = load_suite(name, args.preset)
        cells = expand(suite, seeds=suite.seeds[:1])
        n_seeds = len(suite.seeds)
        grids = tuning.method_grids(suite.methods, suite.tune)
        tset = tuning.tune_settings(suite.tune)
        for cfg in cells:
            short, iters, n_exp = _short(cfg)
            key = json.dumps(
                [
                    short["stream"]["name"],  # wrappers (recurring) do not change the cost
                    short["stream"]["args"],
                    short["model"],
                    short["method"]["name"],
                    short["metrics"],
                    short["train"],
                ],
                sort_keys=True,
            )
            if key not in cache:
                t = _time(short, args.data_root)
                t["probe_per_exp"] = 0.0
                if short["metrics"].get("transfer"):
                    bare = copy.deepcopy(short)
                    bare["metrics"] = {k: v for k, v in bare["metrics"].items() if k != "transfer"}
                    b = _time(bare, args.data_root)
                    t["probe_per_exp"] = max(
                        0.0, (t["train_per_it"] - b["train_per_it"]) * SHORT_ITERS
                    )
                    t["train_per_it"] = b["train_per_it"]
                cache[key] = t
                if args.cache:  # resumable: a timed key is not timed again
                    with open(args.cache, "w") as f:
                        json.dump(cache, f)
                print(f"timed {cfg['cell_id']}: {t}", file=sys.stderr, flush=True)
            t = cache[key]
            est = (
                t["build_s"]
                + t["train_per_it"] * iters
                + t["eval_per_test_exp"] * n_exp * n_exp
                + t["probe_per_exp"] * n_exp
            )
            n_min, n_max = tuning_cell_counts(grids.get(cfg["method_key"]), tset)
            rows.append(
                {
                    "suite": name,
                    "stream": cfg["stream_key"],
                    "method": cfg["method_key"],
                    "iterations": iters,
                    "est_cell_s": est,
                    "reported_cells": n_seeds,
                    "tuning_cells": n_min,
                    "tuning_cells_max": n_max,
                    "ms_per_iteration": 1000 * t["train_per_it"],
                }
            )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)
    for name in args.suites:
        rs = [r for r in rows if r["suite"] == name]
        cells = sum(r["reported_cells"] + r["tuning_cells"] for r in rs)
        total = sum(r["est_cell_s"] * (r["reported_cells"] + r["tuning_cells"]) for r in rs)
        worst = sum(r["est_cell_s"] * (r["reported_cells"] + r["tuning_cells_max"]) for r in rs)
        print(
            f"{name} ({args.preset}): {sum(r['reported_cells'] for r in rs)} reported + "
            f"{sum(r['tuning_cells'] for r in rs)} tuning cells = {cells}; "
            f"total {total / 3600:.1f} core-h, {total / 2 / 3600:.1f} h with --jobs 2 "
            f"(every extension taken: {worst / 3600:.1f} core-h)"
        )
        for r in rs:
            print(
                f"  {r['stream']:<28} {r['method']:<26} {r['iterations']:>7} it "
                f"{r['ms_per_iteration']:6.2f} ms/it  est {r['est_cell_s'] / 60:7.1f} min/cell "
                f"x ({r['reported_cells']} + {r['tuning_cells']})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
