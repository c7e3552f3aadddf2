"""P2: per-iteration cost of the plasticity plugins against our Naive.

Each method's strategy (CBP, ReDo, L2Init, Shrink & Perturb, with their default
hyperparameters) and ``FastNaive`` train the same MLP 784-100-100-10 with Adam
(lr 1e-3, minibatch 32) on the same Permuted MNIST experience (the shared MNIST
files when found via ``NEUMOD_DATA_ROOT`` or ``../shared/datasets``, else random
tensors of the same shape). The programs (one full pass over the experience each)
are timed interleaved, Naive next to each method, and the ratio of the median
per-iteration times is reported. Bar: at most 1.3x.

Shrink & Perturb must draw one fresh uniform number per parameter every step, which
alone costs a large part of a Naive step of this small MLP. Its floor, the fresh
draw alone (the plugin's ``_draw_noise``, once per iteration), is timed in the same
interleaved rounds as Naive and Shrink & Perturb; the floor line reports
``1 + draw / Naive step``, and Shrink & Perturb's bar is against that floor:
``S&P step / (Naive step + draw) <= 1.10``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from common import PerfResult, interleaved_times, median  # noqa: E402

from avalanche_neumod.benchmarks import ExperienceTensors, tensor_benchmark  # noqa: E402
from avalanche_neumod.models import MLP  # noqa: E402
from avalanche_neumod.training import FastNaive  # noqa: E402
from avalanche_neumod.training.strategies import (  # noqa: E402
    CBP,
    L2Init,
    ReDo,
    ShrinkPerturb,
)

MB = 32
METHODS = {"CBP": CBP, "ReDo": ReDo, "L2Init": L2Init, "Shrink & Perturb": ShrinkPerturb}


def _data(n: int) -> tuple[ExperienceTensors, str]:
    roots = [os.environ.get("NEUMOD_DATA_ROOT"), str(HERE.parents[2] / "shared" / "datasets")]
    g = torch.Generator().manual_seed(0)
    for root in roots:
        if root and (Path(root) / "MNIST" / "raw").is_dir():
            from torchvision.datasets import MNIST

            ds = MNIST(root=root, train=True, download=False)
            x = (ds.data[:n].float() / 255 - 0.1307) / 0.3081
            perm = torch.randperm(784, generator=g)
            x = x.flatten(1)[:, perm].view(n, 1, 28, 28)
            return ExperienceTensors(x, ds.targets[:n], 0), "Permuted MNIST"
    x = torch.randn(n, 1, 28, 28, generator=g)
    return ExperienceTensors(x, torch.randint(0, 10, (n,), generator=g), 0), "random tensors"


def _strategy(cls):
    torch.manual_seed(0)
    model = MLP(784, (100, 100), 10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return cls(model=model, optimizer=opt, train_mb_size=MB, evaluator=None)


def run(quick: bool = False) -> list[PerfResult]:
    n = 640 if quick else 3200
    repeats = 3 if quick else 7
    data, what = _data(n)
    exp = tensor_benchmark([data], [data]).train_stream[0]
    iters = -(-n // MB)
    results = []
    for name, cls in METHODS.items():
        naive, method = _strategy(FastNaive), _strategy(cls)
        programs = {"naive": lambda s=naive: s.train(exp), name: lambda s=method: s.train(exp)}
        if name == "Shrink & Perturb":
            method.shrink_perturb.attach(method.model)
            programs["draw"] = lambda pl=method.shrink_perturb: [
                pl._draw_noise() for _ in range(iters)
            ]
        times = interleaved_times(programs, repeats=repeats, warmup=2)
        ours, ref = median(times[name]) / iters, median(times["naive"]) / iters
        notes = f"{what}, {iters} iterations x {repeats} repeats, default hyperparameters"
        if name == "Shrink & Perturb":
            draw = median(times["draw"]) / iters
            results += _shrink_perturb_lines(method.shrink_perturb, ours, ref, draw, notes)
            continue
        results.append(
            PerfResult(
                id=f"P2 {name}",
                what=f"{name} vs FastNaive, time per iteration (MLP 784-100-100-10, Adam, mb {MB})",
                ours=ours * 1e3,
                reference=ref * 1e3,
                unit="ms",
                ratio=ours / ref,
                bar=1.3,
                notes=notes,
            )
        )
    return results


def _shrink_perturb_lines(
    plugin, t_sp: float, t_naive: float, t_draw: float, notes: str
) -> list[PerfResult]:
    """Shrink & Perturb against its floor (Naive step + the fresh draw, measured in the
    same rounds), and the floor line itself (1 + draw / Naive step, no bar of its own)."""
    floor = t_naive + t_draw
    count = sum(q.numel() for q in plugin._uniform)
    return [
        PerfResult(
            id="P2 Shrink & Perturb",
            what="Shrink & Perturb vs its floor (FastNaive step + the fresh draw), "
            f"time per iteration (MLP 784-100-100-10, Adam, mb {MB})",
            ours=t_sp * 1e3,
            reference=floor * 1e3,
            unit="ms",
            ratio=t_sp / floor,
            bar=1.1,
            notes=f"{notes}; vs FastNaive alone {t_sp / t_naive:.2f}x, "
            f"floor line {floor / t_naive:.2f}x",
        ),
        PerfResult(
            id="P2 Shrink & Perturb floor",
            what=f"the draw of sigma*theta_fresh alone ({count:,} uniforms) vs a FastNaive "
            "iteration",
            ours=t_draw * 1e3,
            reference=t_naive * 1e3,
            unit="ms",
            ratio=1.0 + t_draw / t_naive,
            bar=float("inf"),
            notes="ratio = 1 + draw / Naive step: what S&P cannot avoid; reference only, "
            "S&P's bar is 1.1x this floor",
        ),
    ]


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    for r in run(quick="--quick" in sys.argv):
        print(f"{r.id}: {r.ours:.3f} ms vs {r.reference:.3f} ms = {r.ratio:.2f}x (bar {r.bar})")
