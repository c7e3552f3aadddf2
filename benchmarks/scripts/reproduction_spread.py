"""How far a committed cell's rerun moves on another machine: the measurement behind
``avalanche_neumod.experiment.reproduce.TOLERANCE``.

For every committed report (``reports/*/run``) the cell that ``tests/reporting/
test_reproduce.py`` reruns (the cheapest finished, non-tuning cell) is run again under
several stand-ins for another machine: other ISA levels (``ATEN_CPU_CAPABILITY=avx2``,
``default``) and another thread count; and, as the yardstick of a real change, with the
next seed on this machine's own settings. Each rerun's printed record is compared with the
stored one (largest absolute difference per kind of number) and the table is written as
markdown::

    NEUMOD_DATA_ROOT=../shared/datasets python benchmarks/scripts/reproduction_spread.py \
        --out /tmp/spread.md [--reports plasticity_lab transfer]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIGS = {  # name -> (environment, threads, seed offset)
    "native": ({}, None, 0),
    "avx2": ({"ATEN_CPU_CAPABILITY": "avx2"}, None, 0),
    "default ISA": ({"ATEN_CPU_CAPABILITY": "default"}, None, 0),
    "2 threads": ({}, 2, 0),
    "next seed": ({}, None, 1),
}


def cheapest(run: Path) -> dict:
    from avalanche_neumod.experiment.run_folder import load_results

    ok = [r for r in load_results(run) if r.get("status") == "ok"]
    ok = [r for r in ok if not (r.get("config") or {}).get("tuning")] or ok
    return min(ok, key=lambda r: float(r.get("timings", {}).get("total_s", float("inf"))))


def worker(runs: list[str], threads: int | None, seed_offset: int, out: str) -> None:
    from avalanche_neumod.experiment.cell import run_cell
    from avalanche_neumod.experiment.reproduce import printed

    got = {}
    for run in runs:
        stored = cheapest(Path(run))
        cfg = json.loads(json.dumps(stored["config"]))
        cfg["seed"] = int(cfg["seed"]) + seed_offset
        t = threads or (stored.get("host") or {}).get("torch_threads")
        again = run_cell(cfg, root=os.environ.get("NEUMOD_DATA_ROOT"), threads=t)
        got[run] = {
            "status": again["status"],
            "printed": printed(again) if again["status"] == "ok" else None,
            "fingerprint": again["host"].get("fingerprint"),
        }
    Path(out).write_text(json.dumps(got))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reports", nargs="*", help="report folder names (default: all)")
    ap.add_argument("--configs", nargs="*", default=list(CONFIGS))
    ap.add_argument("--out", default="/tmp/reproduction_spread.md")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--seed-offset", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--runs", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a.runs, a.threads, a.seed_offset, a.worker)
    from avalanche_neumod.experiment.reproduce import TOLERANCE, printed, spread

    runs = sorted(str(p.parent) for p in REPO.glob("reports/*/run/cells"))
    if a.reports:
        runs = [r for r in runs if Path(r).parent.name in a.reports]
    stored = {r: printed(cheapest(Path(r))) for r in runs}
    rows = []
    for name in a.configs:
        env, threads, off = CONFIGS[name]
        tmp = f"/tmp/spread_{name.replace(' ', '_')}.json"
        cmd = [sys.executable, __file__, "--worker", tmp, "--seed-offset", str(off)]
        cmd += ["--runs", *runs]
        if threads:
            cmd += ["--threads", str(threads)]
        subprocess.run(cmd, check=True, env={**os.environ, **env})
        got = json.loads(Path(tmp).read_text())
        for r in runs:
            g = got[r]
            s = spread(stored[r], g["printed"]) if g["printed"] else None
            rows.append(
                (Path(r).parent.name, name, g["fingerprint"]["isa"], g["fingerprint"]["threads"], s)
            )
    lines = [
        "| report | rerun | ISA | threads | max diff, single value | max diff, summary "
        "| unequal counts |",
        "|---|---|---|---|---|---|---|",
    ]
    for rep, name, isa, th, s in sorted(rows):
        if s is None:
            lines.append(f"| {rep} | {name} | {isa} | {th} | failed | | |")
        else:
            lines.append(
                f"| {rep} | {name} | {isa} | {th} | {s['value']:.4f} | {s['mean']:.4f} "
                f"| {int(s['exact'])} |"
            )
    lines.append("")
    lines.append(f"Tolerance: single value {TOLERANCE['value']}, summary {TOLERANCE['mean']}.")
    Path(a.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
