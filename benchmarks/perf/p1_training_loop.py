"""P1, training-loop overhead: a Naive run on Permuted MNIST (MLP 784-100-100-10, SGD, batch 16,
one epoch on each of many short experiences) through our fast path (`FastNaive`: Avalanche's
`SupervisedTemplate` + `FastDataPlugin` + lean dispatch), against a hand-written PyTorch loop over
the same tensors (one `randperm` per epoch, slicing, forward, backward, step). Avalanche's stock
`Naive` (its own data loader) is timed beside them. Neither side evaluates or logs during
training. Bar: ours <= 1.25x the hand loop."""

from __future__ import annotations

import warnings

import torch
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from common import PerfResult, hand_train_epoch, interleaved_times, median

from avalanche_neumod.benchmarks.streams import permuted_mnist
from avalanche_neumod.models import MLP
from avalanche_neumod.training import FastNaive

BATCH = 16


def _strategy_run(cls, bm):
    def run():
        torch.manual_seed(0)
        model = MLP(784, (100, 100), 10)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = cls(
                model=model,
                optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
                train_mb_size=BATCH,
                train_epochs=1,
                evaluator=EvaluationPlugin(loggers=[]),
            )
        for exp in bm.train_stream:
            s.train(exp, eval_streams=[])

    return run


def _hand_run(bm):
    data = [exp.tensors for exp in bm.train_stream]

    def run():
        torch.manual_seed(0)
        model = MLP(784, (100, 100), 10)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        for d in data:
            hand_train_epoch(model, opt, d, BATCH)

    return run


def run(quick: bool = False) -> list[PerfResult]:
    n_exp, size = (5, 200) if quick else (20, 500)
    bm = permuted_mnist(n_experiences=n_exp, train_size=size, test_size=100, seed=0)
    times = interleaved_times(
        {
            "hand": _hand_run(bm),
            "ours": _strategy_run(FastNaive, bm),
            "stock": _strategy_run(Naive, bm),
        },
        repeats=3 if quick else 7,
    )
    hand, ours, stock = (median(times[k]) for k in ("hand", "ours", "stock"))
    iters = n_exp * -(-size // BATCH)
    what = f"{n_exp} experiences x {size} images, {iters} iterations"
    return [
        PerfResult("P1", f"FastNaive vs hand loop ({what})", ours, hand, "s", ours / hand, 1.25),
        PerfResult(
            "P1 (stock)",
            f"Avalanche Naive vs hand loop ({what})",
            stock,
            hand,
            "s",
            stock / hand,
            float("inf"),
            notes="reference only, no bar",
        ),
    ]
