"""P2, NGM-SGD's per-iteration cost: `NGMSGD` (gains on every layer, entropy-driven gain update
before each forward, entropy after each update, gain and entropy history recorded) against our
`FastNaive` with the same plain SGD on the same MLP, over the same in-memory tensors (random
MNIST-shaped inputs: the cost does not depend on the pixels). Two settings: the NGM study's
(MLP 784-400-400-10 of `ngm_mlp`, batch 128) and P1's small one (MLP 784-100-100-10, batch 16),
where fixed per-iteration costs weigh most. One experience, no evaluation or logging during
training; the two sides are timed interleaved. Bar: NGM <= 1.3x FastNaive."""

from __future__ import annotations

import warnings

import torch
from avalanche.training.plugins import EvaluationPlugin
from common import PerfResult, interleaved_times, median

from avalanche_neumod.benchmarks.tensor_data import ExperienceTensors, tensor_benchmark
from avalanche_neumod.models.ngm_mlp import ngm_mlp
from avalanche_neumod.training import FastNaive
from avalanche_neumod.training.ngm import NGMSGD, baseline_optimizer


def _bench(n_iters: int, batch: int):
    gen = torch.Generator().manual_seed(0)
    n = n_iters * batch
    x = torch.randn(n, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    exp = ExperienceTensors(x, y, torch.zeros(n, dtype=torch.long))
    return tensor_benchmark(train=[exp], test=[exp])


def _run(method: str, bm, hidden, batch):
    def run():
        torch.manual_seed(0)
        model = ngm_mlp(784, hidden, 10)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            evaluator = EvaluationPlugin(loggers=[])
            if method == "ngm":
                s = NGMSGD(model=model, eta=0.4, lr=0.01, train_mb_size=batch, evaluator=evaluator)
            else:
                opt = baseline_optimizer(model, "sgd", lr=0.01)
                s = FastNaive(model=model, optimizer=opt, train_mb_size=batch, evaluator=evaluator)
        s.train(bm.train_stream[0], eval_streams=[])

    return run


def run(quick: bool = False) -> list[PerfResult]:
    out = []
    settings = [
        ("study", (400, 400), 128, 100 if quick else 200),
        ("small", (100, 100), 16, 200 if quick else 800),
    ]
    for name, hidden, batch, iters in settings:
        bm = _bench(iters, batch)
        times = interleaved_times(
            {"naive": _run("sgd", bm, hidden, batch), "ngm": _run("ngm", bm, hidden, batch)},
            repeats=3 if quick else 5,
        )
        naive, ngm = median(times["naive"]), median(times["ngm"])
        width = "-".join(map(str, (784, *hidden, 10)))
        out.append(
            PerfResult(
                "P2 NGM" if name == "study" else "P2 NGM (small)",
                f"NGMSGD vs FastNaive, MLP {width}, batch {batch}, {iters} iterations",
                ngm,
                naive,
                "s",
                ngm / naive,
                1.3,
                notes=f"{1e3 * (ngm - naive) / iters:.3f} ms extra per iteration",
            )
        )
    return out
