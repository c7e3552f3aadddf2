"""The device check behind ``benchmarks/gpu_check.sh``: tests, suite cells and perf rows on
one device, written to a Markdown report (``reports/gpu.md`` from a real device run).

Steps, each timed and recorded pass/fail; a failing step does not stop the next ones, and
the exit status is 1 when any failed:

1. ``environment``: the device (name, memory), torch, CUDA, Python, Avalanche versions.
2. ``tests``: ``pytest -m device`` with ``NEUMOD_TEST_DEVICE`` set to the device.
3. ``suite <name>``: one cell of every shipped suite's ``paper`` preset (found through
   ``available_suites()``), cut by ``truncate_cell`` and run on the device. A dataset
   absent from the data root is replaced by random images of its shapes, sizes and
   classes (recorded in the report): these cells check that the code runs on the device,
   their accuracies mean nothing.
4. ``perf``: P1 (our Naive against a hand loop) and NeuMoSync against Naive at batch 16
   and 128 on the MLP and on SlimResNet18, each ratio timed interleaved in one run, on
   random tensors of the benchmarks' shapes (a timing does not depend on pixel values).
   Bars are reported, not enforced (a missed bar does not fail the step).

    python benchmarks/gpu_check.py --device cuda --out reports/gpu.md
    python benchmarks/gpu_check.py --device cpu --quick --out /tmp/gpu.md
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE / "perf"))
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

# the cells' order of preference: the heaviest model first, then a method that is not Naive
MODEL_RANK = {"slim_resnet18": 0, "convnet": 1, "mlp": 2, "ngm_mlp": 3}


@dataclass
class Step:
    name: str
    ok: bool = False
    seconds: float = 0.0
    summary: str = ""
    details: list[str] = field(default_factory=list)


def run_step(steps: list[Step], name: str, fn: Callable[[Step], None]) -> Step:
    """Run ``fn(step)``; an exception marks the step failed with its traceback's tail."""
    step = Step(name)
    t0 = time.perf_counter()
    print(f"[gpu_check] {name} ...", flush=True)
    try:
        fn(step)
        if not step.summary:
            step.summary = "ok"
        step.ok = step.ok or not any(d.startswith("FAIL") for d in step.details)
    except Exception as e:  # noqa: BLE001 - recorded, the next step runs
        step.ok = False
        step.summary = f"{type(e).__name__}: {e}".splitlines()[0][:300]
        step.details += ["```", *traceback.format_exc().splitlines()[-25:], "```"]
    step.seconds = time.perf_counter() - t0
    print(
        f"[gpu_check] {name}: {'pass' if step.ok else 'FAIL'} ({step.seconds:.1f} s) "
        f"{step.summary}",
        flush=True,
    )
    steps.append(step)
    return step


# ------------------------------------------------------------------ synthetic stand-in data

# name -> (train size, test size, image shape, classes)
SHAPES = {
    "load_mnist": (60000, 10000, (28, 28), 10),
    "load_cifar10": (50000, 10000, (3, 32, 32), 10),
    "load_cifar100": (50000, 10000, (3, 32, 32), 100),
    "load_tiny_imagenet": (100000, 10000, (3, 64, 64), 200),
}
STREAM_MODULES = ("permuted", "random_label", "shuffle", "ngm", "class_split")


def _synthetic(name: str, train_per_class=None, test_per_class=None):
    """Random uint8 images with balanced labels, the shapes and sizes of ``name``'s data."""
    from avalanche_neumod.benchmarks.datasets import ImageSplits

    n_tr, n_te, shape, c = SHAPES[name]
    n_tr = n_tr if train_per_class is None else c * int(train_per_class)
    n_te = n_te if test_per_class is None else c * int(test_per_class)
    g = torch.Generator().manual_seed(0)
    y_tr, y_te = torch.arange(n_tr) % c, torch.arange(n_te) % c
    x_tr = torch.randint(0, 256, (n_tr, *shape), generator=g, dtype=torch.uint8)
    x_te = torch.randint(0, 256, (n_te, *shape), generator=g, dtype=torch.uint8)
    extras = {}
    if name == "load_cifar100":
        extras = {
            "y_train_coarse": y_tr // 5,
            "y_test_coarse": y_te // 5,
            "coarse_classes": tuple(f"coarse{i}" for i in range(20)),
        }
    classes = [f"class{i}" for i in range(c)]
    return ImageSplits(x_tr, y_tr, x_te, y_te, classes, Path("synthetic"), extras)


@contextlib.contextmanager
def stand_in_data(mode: str, used: set) -> Iterator[None]:
    """Within: the dataset loaders the streams call fall back to :func:`_synthetic` when the
    data are absent (``mode="auto"``) or always (``"synthetic"``); ``"real"``: unchanged.
    ``used`` collects the datasets replaced."""
    import importlib

    from avalanche_neumod.benchmarks import datasets

    if mode == "real":
        yield
        return
    patched = []
    for mod_name in STREAM_MODULES:
        mod = importlib.import_module(f"avalanche_neumod.benchmarks.{mod_name}")
        for fn in SHAPES:
            if hasattr(mod, fn):
                real = getattr(mod, fn)

                def loader(root=None, download=False, *a, _real=real, _fn=fn, **kw):
                    if mode == "auto":
                        try:
                            return _real(root, download, *a, **kw)
                        except datasets.DatasetNotFoundError:
                            pass
                    used.add(_fn.removeprefix("load_"))
                    return _synthetic(_fn, kw.get("train_per_class"), kw.get("test_per_class"))

                patched.append((mod, fn, real))
                setattr(mod, fn, loader)
    try:
        yield
    finally:
        for mod, fn, real in patched:
            setattr(mod, fn, real)


# ------------------------------------------------------------------ steps


def step_environment(step: Step, device: torch.device) -> None:
    import avalanche

    rows = [
        ("device", device_name(device)),
        ("torch", torch.__version__),
        ("CUDA (torch built with)", str(torch.version.cuda)),
        ("cuDNN", str(torch.backends.cudnn.version() if torch.cuda.is_available() else None)),
        ("Python", platform.python_version()),
        ("avalanche-lib", getattr(avalanche, "__version__", "?")),
        ("platform", platform.platform()),
        ("CPU threads (torch)", str(torch.get_num_threads())),
    ]
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        rows.append(("GPU memory", f"{p.total_memory / 2**30:.1f} GiB"))
    step.details += ["| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows]]
    x = torch.ones(4, device=device)
    if float((x * 2).sum()) != 8.0:
        raise RuntimeError(f"arithmetic on {device} gave a wrong result")
    step.summary = device_name(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (cuda)"
    return f"{platform.processor() or platform.machine()} (cpu)"


def step_tests(step: Step, device: torch.device, quick: bool) -> None:
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "device", "-p", "no:cacheprovider"]
    if quick:
        cmd += ["-k", "FastNaive or NeuMoSync-slim or truncated or move"]
    cmd.append(str(REPO / "tests"))
    env = {**os.environ, "NEUMOD_TEST_DEVICE": str(device), "MPLBACKEND": "Agg"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=420)
    lines = (r.stdout + r.stderr).strip().splitlines()
    step.summary = (lines[-1] if lines else "(no output)")[:300]
    step.details.append(f"`{' '.join(cmd[1:])}` with `NEUMOD_TEST_DEVICE={device}`")
    if r.returncode != 0:
        failed = [ln for ln in lines if ln.startswith(("FAILED", "ERROR"))]
        step.details += ["```", *(failed or lines[-30:])[:40], "```"]
        step.details.append("FAIL: pytest exited with status %d" % r.returncode)
    step.ok = r.returncode == 0


def pick_cell(cells: list[dict]) -> dict:
    """The suite's cell to check: the heaviest model, a method other than Naive if any."""
    return min(
        cells,
        key=lambda c: (
            MODEL_RANK.get(c["model"]["name"], 9),
            c["method"]["name"] in ("Naive", "FastNaive"),
        ),
    )


def step_suite(step: Step, name: str, device: torch.device, quick: bool, data: str) -> None:
    from avalanche_neumod.experiment.cell import run_cell
    from avalanche_neumod.experiment.suite import expand, load_suite, truncate_cell

    suite = load_suite(name, "paper")
    cfg = pick_cell(expand(suite, seeds=suite.seeds[:1]))
    cfg["train"]["device"] = str(device)
    if quick:
        short = truncate_cell(cfg, experiences=2, iterations=3, test_size=32, batch_size=8)
    else:
        short = truncate_cell(cfg, experiences=2, iterations=20, test_size=256)
    used: set = set()
    with stand_in_data(data, used):
        r = run_cell(short)
    m = r.get("metrics") or {}
    t = r.get("timings") or {}
    train_s = sum(t.get("train_s") or [])
    iters = sum(m.get("iterations_per_experience") or [0])
    stand_in = f"; random stand-in data for {', '.join(sorted(used))}" if used else ""
    step.summary = (
        f"{cfg['cell_id']} ({cfg['model']['name']}): {r['status']}, {iters} iterations, "
        f"train {train_s:.2f} s, eval {sum(t.get('eval_s') or []):.2f} s{stand_in}"
    )
    step.details.append(f"stream args {short['stream']['args']}, train {short['train']}")
    if r["status"] != "ok":
        step.details += [
            "```",
            *(r.get("traceback") or r.get("error") or "").splitlines()[-20:],
            "```",
        ]
        step.details.append(f"FAIL: status {r['status']}")
    step.ok = r["status"] == "ok"


def step_perf(step: Step, device: torch.device, quick: bool, rows_out: list) -> None:
    import neumosync_overhead as p2
    import training_loop as p1

    from avalanche_neumod.benchmarks.tensor_data import ExperienceTensors, tensor_benchmark

    n_exp, size = (2, 32) if quick else p1.sizes(False)
    g = torch.Generator().manual_seed(0)

    def part(n):
        return ExperienceTensors(
            torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g), 0
        )

    bm = tensor_benchmark([part(size) for _ in range(n_exp)], [part(100) for _ in range(n_exp)])
    rows = p1.run(quick, device=device, bm=bm)
    rows += p2.device_rows(device, quick)
    rows_out += rows
    step.details += perf_table(rows)
    missed = [r.id for r in rows if not r.passed]
    step.summary = f"{len(rows)} rows" + (f"; bars missed: {', '.join(missed)}" if missed else "")


def perf_table(rows) -> list[str]:
    out = [
        "| id | what | ours | reference | ratio | bar | within bar |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        bar = "-" if r.bar == float("inf") else f"<= {r.bar:g}x"
        within = "-" if r.bar == float("inf") else ("yes" if r.passed else "**no**")
        out.append(
            f"| {r.id} | {r.what} | {r.ours * 1e3:.3f} ms | {r.reference * 1e3:.3f} ms "
            f"| {r.ratio:.2f}x | {bar} | {within} |"
        )
    return out


# ------------------------------------------------------------------ report


def write_report(path: Path, steps: list[Step], device: torch.device, args, wall: float) -> None:
    n_fail = sum(not s.ok for s in steps)
    lines = [
        "# Device check",
        "",
        f"Written by `benchmarks/gpu_check.sh --device {args.device}"
        f"{' --quick' if args.quick else ''}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC,"
        f" device **{device_name(device)}**, torch {torch.__version__}"
        f"{'' if not args.quick else ' (quick: tiny sizes, not timings)'}.",
        "",
        f"**{len(steps) - n_fail} of {len(steps)} steps passed** in {wall:.0f} s"
        + ("." if not n_fail else f"; failed: {', '.join(s.name for s in steps if not s.ok)}."),
        "",
        "| step | result | seconds | summary |",
        "|---|---|---|---|",
    ]
    for s in steps:
        summary = s.summary.replace("|", "/")
        lines.append(
            f"| {s.name} | {'pass' if s.ok else '**FAIL**'} | {s.seconds:.1f} | {summary} |"
        )
    for s in steps:
        if s.details:
            lines += ["", f"## {s.name}", "", *s.details]
    lines += [
        "",
        "Suite cells: one cell per suite's `paper` preset (the heaviest model, a method other "
        "than Naive), cut by `truncate_cell` to 2 experiences of a few iterations; where a "
        "dataset is absent the cell runs on random images of its shapes (named in the "
        "summary), so its accuracies mean nothing. Perf rows: random tensors of the "
        "benchmarks' shapes, each ratio timed interleaved in one run with the device "
        "synchronised around every timed call; bars are reported, not enforced.",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a check that all runs")
    ap.add_argument("--out", default=str(REPO / "reports" / "gpu.md"))
    ap.add_argument(
        "--data",
        choices=("auto", "real", "synthetic"),
        default="auto",
        help="suite cells: real data where found, else random stand-ins (auto)",
    )
    ap.add_argument("--skip", nargs="*", default=[], help="steps to skip: tests suites perf")
    ap.add_argument("--suites", nargs="*", default=None, help="only these suites (default all)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    steps: list[Step] = []
    device = torch.device(args.device)
    env = run_step(steps, "environment", lambda s: step_environment(s, device))
    if env.ok:
        if "tests" not in args.skip:
            run_step(steps, "tests", lambda s: step_tests(s, device, args.quick))
        if "suites" not in args.skip:
            from avalanche_neumod.experiment.suite import available_suites, load_suite

            names = sorted(available_suites())
            if args.suites is not None:
                names = [n for n in names if n in args.suites]
            for name in names:
                try:
                    load_suite(name, "paper")
                except Exception:  # noqa: BLE001 - a suite without a paper preset
                    continue
                run_step(
                    steps,
                    f"suite {name}",
                    lambda s, n=name: step_suite(s, n, device, args.quick, args.data),
                )
        if "perf" not in args.skip:
            run_step(steps, "perf", lambda s: step_perf(s, device, args.quick, []))
    out = Path(args.out)
    write_report(out, steps, device, args, time.perf_counter() - t0)
    n_fail = sum(not s.ok for s in steps)
    print(f"[gpu_check] wrote {out}: {len(steps) - n_fail}/{len(steps)} steps passed", flush=True)
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
