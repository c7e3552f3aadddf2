"""P3: stability-gap tracking throughput (bar: at least 0.8x a plain no-grad loop).

Measures one evaluation point of :class:`StabilityGapMetric` with 10 seen
experiences of 1,000 test samples each (Permuted-MNIST-shaped tensors, MLP
784-100-100-10, eval batch 1,024): the tracker's evaluation throughput (samples/s,
including the switch to eval mode and back, the forward passes, argmax, and the
per-experience accuracy sums) against a plain ``torch.no_grad()`` ``model(x)`` loop
over the same tensors in batches of the same size. Bar: ratio >= 0.8x. The notes
give the tracker's cost per evaluation point (one point = all 10 experiences).
Timed interleaved, medians of the repeats.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from common import PerfResult, interleaved_times, median  # noqa: E402

from avalanche_neumod import MLP, ExperienceTensors, tensor_benchmark  # noqa: E402
from avalanche_neumod.evaluation import StabilityGapMetric  # noqa: E402

N_EXP, SAMPLES, BATCH = 10, 1000, 1024


def run(quick: bool) -> list[PerfResult]:
    warnings.filterwarnings("ignore", message="No loggers specified")
    torch.manual_seed(0)
    tests = [
        ExperienceTensors(torch.randn(SAMPLES, 1, 28, 28), torch.randint(0, 10, (SAMPLES,)), 0)
        for _ in range(N_EXP)
    ]
    bm = tensor_benchmark(tests, tests)
    model = MLP(784, (100, 100), 10)
    model.train()
    tracker = StabilityGapMetric(bm.test_stream, samples_per_exp=SAMPLES, batch_size=BATCH)
    tracker.tasks = list(range(N_EXP))  # all ten experiences seen (trained once each)
    tracker.current = N_EXP - 1
    strategy = SimpleNamespace(model=model, device=torch.device("cpu"))
    xs = [t.x for t in tests]
    points = 5 if quick else 40

    assert tracker.seen() and len(tracker.seen()) == N_EXP, "the tracker would evaluate nothing"

    def ours():
        for _ in range(points):
            tracker._record(strategy)

    def plain():
        for _ in range(points):
            model.eval()
            with torch.no_grad():
                for x in xs:
                    for i in range(0, len(x), BATCH):
                        model(x[i : i + BATCH])
            model.train()

    times = interleaved_times({"ours": ours, "plain": plain}, repeats=3 if quick else 7)
    t_ours, t_plain = median(times["ours"]), median(times["plain"])
    n = points * N_EXP * SAMPLES
    thr_ours, thr_plain = n / t_ours, n / t_plain
    per_point_ms = 1000 * t_ours / points
    return [
        PerfResult(
            id="P3",
            what="tracker eval throughput vs plain no-grad model(x), 10 x 1,000 samples",
            ours=thr_ours,
            reference=thr_plain,
            unit="samples/s",
            ratio=thr_ours / thr_plain,
            bar=0.8,
            higher_is_better=True,
            notes=f"cost per evaluation point (10 experiences): {per_point_ms:.2f} ms",
        )
    ]


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r.as_dict())
