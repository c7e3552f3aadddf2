"""P5, the end-to-end loop users run: train each experience for one epoch, then evaluate the
whole test stream, on Permuted MNIST (MLP 784-100-100-10, SGD). Ours is `FastNaive` with
`EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loggers=[])` and
`eval_mb_size=1024` (`strategy.train(exp)` then `strategy.eval(test_stream)` after every
experience); the reference is a hand-written PyTorch loop doing the same work over the same
tensors: one `randperm` per epoch, slicing, forward, backward, step; then, under
`torch.no_grad()` in eval mode, batches of 1,024 of every test experience, its accuracy and
the stream's. Avalanche's stock `Naive` (its own data loaders, same evaluator) is timed beside
them. Two settings: 20 experiences x 500 train / 200 test images at batch 16, and 10 x 2,000 /
1,000 at batch 32. Timed interleaved, medians of the repeats. Bar: ours <= 1.5x the hand
loop."""

from __future__ import annotations

import sys
from pathlib import Path

from avalanche.training import Naive

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from common import (  # noqa: E402
    PerfResult,
    against_hand_loop,
    hand_run,
    interleaved_times,
    strategy_run,
)

from avalanche_neumod.benchmarks.streams import permuted_mnist  # noqa: E402
from avalanche_neumod.training import FastNaive  # noqa: E402

EVAL_BATCH = 1024


def _setting(n_exp: int, train_size: int, test_size: int, batch: int, repeats: int):
    bm = permuted_mnist(n_experiences=n_exp, train_size=train_size, test_size=test_size, seed=0)
    times = interleaved_times(
        {
            "hand": hand_run(bm, batch, evaluate=True, eval_mb_size=EVAL_BATCH),
            "ours": strategy_run(FastNaive, bm, batch, evaluate=True, eval_mb_size=EVAL_BATCH),
            "stock": strategy_run(Naive, bm, batch, evaluate=True, eval_mb_size=EVAL_BATCH),
        },
        repeats=repeats,
    )
    what = (
        f"{n_exp} exp x {train_size:,} train / {test_size:,} test, batch {batch}, "
        f"test stream evaluated after each experience"
    )
    return against_hand_loop(f"P5 {n_exp}x{train_size}", " train + eval", what, times, 1.5)


def run(quick: bool = False) -> list[PerfResult]:
    if quick:
        return _setting(5, 200, 100, 16, repeats=3)
    return _setting(20, 500, 200, 16, repeats=7) + _setting(10, 2000, 1000, 32, repeats=5)
