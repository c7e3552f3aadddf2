"""The lab round's cost, from ``estimate_cost.py``'s timed short cells rescaled to measured
clean per-epoch costs (docs/suites.md, "Cost of the lab round").

On a shared machine the short cells are timed under whatever load there is. Each cell's
estimate is therefore rescaled by its stream's load factor: the clean time per iteration
of Naive on that model (from ``fit_task1.py``, measured when the machine was quiet)
divided by the time per iteration ``estimate_cost.py`` measured for Naive on the same
stream in the same run. Cells that several suites share (same stream, model, method and
arguments, metrics, training settings and tuning grid: what "compute once" would run
once) are counted once in the "shared" column.

    PYTHONPATH=. python benchmarks/scripts/lab_round_cost.py /tmp/lab_cost.json \
        --clean mlp=0.052/75 convnet=0.708/75
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

from avalanche_neumod.experiment import tuning
from avalanche_neumod.experiment.suite import expand, load_suite


def _key(cfg: dict, grid: dict) -> str:
    return json.dumps(
        [
            cfg["stream"],
            cfg["model"],
            cfg["method"]["name"],
            cfg["method"]["args"],
            cfg["metrics"],
            cfg["train"],
            cfg["optimizer"],
            grid,
        ],
        sort_keys=True,
        default=str,
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("estimate", help="estimate_cost.py --out JSON")
    p.add_argument("--preset", default="lab")
    p.add_argument(
        "--clean",
        nargs="+",
        default=["mlp=0.052/75", "convnet=0.708/75"],
        help="model=seconds per epoch/iterations per epoch of a clean Naive epoch",
    )
    a = p.parse_args(argv)
    clean = {}
    for c in a.clean:
        k, v = c.split("=")
        s, n = v.split("/")
        clean[k] = float(s) / float(n)
    rows = json.load(open(a.estimate))
    naive = {
        (r["suite"], r["stream"]): r["ms_per_iteration"] / 1000
        for r in rows
        if r["method"] == "Naive"
    }
    by = {(r["suite"], r["stream"], r["method"]): r for r in rows}
    seen: set = set()
    per = defaultdict(lambda: [0.0, 0.0, 0.0, 0, 0])  # (suite, stream): min, max, shared, cells
    for name in sorted({r["suite"] for r in rows}):
        suite = load_suite(name, a.preset)
        grids = tuning.method_grids(suite.methods, suite.tune)
        for cfg in expand(suite, seeds=suite.seeds[:1]):
            r = by.get((name, cfg["stream_key"], cfg["method_key"]))
            if r is None:
                continue
            model = cfg["model"]["name"]
            f = clean[model] / naive[(name, cfg["stream_key"])]
            cell = r["est_cell_s"] * f
            n_min = r["reported_cells"] + r["tuning_cells"]
            n_max = r["reported_cells"] + r["tuning_cells_max"]
            k = _key(cfg, grids.get(cfg["method_key"], {}))
            acc = per[(name, cfg["stream_key"])]
            acc[0] += cell * n_min
            acc[1] += cell * n_max
            if k not in seen:
                seen.add(k)
                acc[2] += cell * n_min
            acc[3] += n_min
            acc[4] += n_max
    print(
        "| suite | stream | cells (no extension / every extension) | core-h (no ext.) "
        "| core-h (every ext.) | core-h, shared cells once |"
    )
    print("|---|---|---|---|---|---|")
    tot = [0.0, 0.0, 0.0, 0, 0]
    for (name, s), v in sorted(per.items()):
        print(
            f"| {name} | {s} | {v[3]} / {v[4]} | {v[0] / 3600:.1f} | {v[1] / 3600:.1f} "
            f"| {v[2] / 3600:.1f} |"
        )
        for i in range(5):
            tot[i] += v[i]
    print(
        f"| **all** | | {tot[3]} / {tot[4]} | {tot[0] / 3600:.1f} | {tot[1] / 3600:.1f} "
        f"| {tot[2] / 3600:.1f} |"
    )
    by_stream = defaultdict(float)
    for (_name, s), v in per.items():
        by_stream[s] += v[2]
    print()
    print("| stream | core-h, shared cells once, no extension |")
    print("|---|---|")
    for s, v in sorted(by_stream.items(), key=lambda kv: kv[1]):
        print(f"| {s} | {v / 3600:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
