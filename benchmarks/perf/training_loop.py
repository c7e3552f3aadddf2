"""P1, training-loop overhead: a Naive run on Permuted MNIST (MLP 784-100-100-10, SGD, batch 16,
one epoch on each of many short experiences) through our fast path (`FastNaive`: Avalanche's
`SupervisedTemplate` + `FastDataPlugin` + lean dispatch), against a hand-written PyTorch loop over
the same tensors (one `randperm` per epoch, slicing, forward, backward, step). Avalanche's stock
`Naive` (its own data loader) is timed beside them. Neither side evaluates or logs during
training. Bar: ours <= 1.25x the hand loop."""

from __future__ import annotations

from avalanche.training import Naive
from common import (
    PerfResult,
    against_hand_loop,
    device_sync,
    hand_run,
    interleaved_times,
    strategy_run,
)

from avalanche_neumod.benchmarks.streams import permuted_mnist
from avalanche_neumod.training import FastNaive

BATCH = 16


def sizes(quick: bool) -> tuple[int, int]:
    """(experiences, train images per experience) of the run."""
    return (5, 200) if quick else (20, 500)


def run(quick: bool = False, device="cpu", bm=None) -> list[PerfResult]:
    """P1's rows on ``device``; ``bm``: a stream of Permuted MNIST's shapes to use instead
    of Permuted MNIST (e.g. random tensors where MNIST is absent: the timing does not depend
    on pixel values)."""
    n_exp, size = sizes(quick)
    if bm is None:
        bm = permuted_mnist(n_experiences=n_exp, train_size=size, test_size=100, seed=0)
    else:
        n_exp, size = len(bm.train_stream), len(bm.train_stream[0].dataset)
    times = interleaved_times(
        {
            "hand": hand_run(bm, BATCH, device=device),
            "ours": strategy_run(FastNaive, bm, BATCH, device=device),
            "stock": strategy_run(Naive, bm, BATCH, device=device),
        },
        repeats=3 if quick else 7,
        sync=device_sync(device),
    )
    iters = n_exp * -(-size // BATCH)
    return against_hand_loop(
        "P1", "", f"{n_exp} experiences x {size} images, {iters} iterations", times, 1.25
    )
