"""Resident memory of a sequential run (``neumod run --jobs 1``) after each finished cell.

Writes a one-stream suite (Permuted MNIST, Naive, an MLP 100-100, one seed a cell) into
``--work``, starts ``neumod run <it> --jobs 1`` there as a child process and samples its
``VmRSS`` (``/proc/<pid>/status``) every 0.5 s; prints, for each count of finished cells,
the first sample taken once that many result files exist, and the peak. Flat numbers: a
finished cell keeps nothing; growing ones: each cell keeps its data (docs/suites.md,
"Launchers").

    NEUMOD_DATA_ROOT=/work/shared/datasets OMP_NUM_THREADS=1 PYTHONPATH=. \\
        python benchmarks/scripts/sequential_memory.py --cells 12 --train-size 2000 \\
        --test-size 2000
    # the lab preset's stream size (10 tasks of 10,000 images, the full test set):
    ... sequential_memory.py --cells 4 --train-size 10000 --test-size 10000
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from avalanche_neumod.experiment.run_folder import cell_files

SUITE = """name: sequential_memory
description: Resident memory of a sequential run (benchmarks/scripts/sequential_memory.py).
seeds: {seeds}
defaults:
  model: {{name: mlp, args: {{hidden_sizes: [100, 100]}}}}
  train: {{mb_size: 16, epochs: 1}}
  optimizer: {{name: sgd, lr: 0.01}}
streams:
  permuted_mnist:
    args: {{n_experiences: {n_exp}, train_size: {train}, test_size: {test}}}
methods:
  Naive: {{}}
presets:
  cpu: {{}}
"""


def rss_mb(pid: int) -> float | None:
    """The process's resident set size in MB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def measure(work: Path, cells: int, n_exp: int, train: int, test: int) -> dict[int, float]:
    """Run the suite into ``work/run``; {finished cells: MB at the first sample} and peak."""
    suite = work / "sequential_memory.yaml"
    suite.write_text(SUITE.format(seeds=list(range(cells)), n_exp=n_exp, train=train, test=test))
    out = work / "run"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "avalanche_neumod.cli", "run", str(suite), "--out", str(out)]
    cmd += ["--jobs", "1", "--no-progress"]
    log = work / "run.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
    first: dict[int, float] = {}
    peak = 0.0
    while proc.poll() is None:
        mb = rss_mb(proc.pid)
        if mb is not None:
            done = len(cell_files(out)) if out.is_dir() else 0
            first.setdefault(done, mb)
            peak = max(peak, mb)
        time.sleep(0.5)
    text = log.read_text().strip()
    if proc.returncode != 0:
        raise SystemExit(f"neumod run failed ({proc.returncode}):\n{text}")
    print(text.splitlines()[-1] if text else "(no output)")
    first[-1] = peak
    return first


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", type=int, default=12)
    ap.add_argument("--experiences", type=int, default=10)
    ap.add_argument("--train-size", type=int, default=2000)
    ap.add_argument("--test-size", type=int, default=2000)
    ap.add_argument("--work", help="folder for the suite and run (default: a temporary one)")
    a = ap.parse_args(argv)
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="seqmem-"))
    work.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("NEUMOD_DATA_ROOT"):
        print("note: NEUMOD_DATA_ROOT is not set (MNIST is looked for at the default root)")
    got = measure(work, a.cells, a.experiences, a.train_size, a.test_size)
    peak = got.pop(-1)
    print("cells finished: RSS MB  " + "  ".join(f"{k}: {v:.0f}" for k, v in sorted(got.items())))
    print(f"peak {peak:.0f} MB")


if __name__ == "__main__":
    main()
