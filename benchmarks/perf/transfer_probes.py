"""P4: cost of the transfer probes (bar: at most 1.2x their work at main-loop rates).

A Permuted-MNIST-shaped run (T = 10 experiences, random tensors, MLP
784-100-100-10, batch 16, our ``FastNaive``) with :class:`KnowledgeTransferMetric`
(``beta`` = 20, 1,000 evaluation samples). The probes' wall time (9 probes from
the final state and 10 from the initial state, each forking the strategy and
training ``beta`` batches through its own ``train()`` with an accuracy point
before and after every batch) is compared with what that work costs in the main
loop: probe iterations x the main run's time per iteration (a plain run without
metrics) + probe evaluation points x the tracker's time per point on one
1,000-sample experience, measured in the main loop (a run tracking experience 0
after every update, minus the same run untracked). Bar: ratio <= 1.2x. Timed interleaved, medians.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import torch
from avalanche.training.plugins import EvaluationPlugin

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from common import PerfResult, interleaved_times, median, seeded_mlp  # noqa: E402

from avalanche_neumod import ExperienceTensors, FastNaive, tensor_benchmark  # noqa: E402
from avalanche_neumod.evaluation import (  # noqa: E402
    KnowledgeTransferMetric,
    StabilityGapMetric,
)

T, BATCH, EVAL = 10, 16, 1000


def _bench(n_train: int):
    g = torch.Generator().manual_seed(0)

    def exp(n):
        return ExperienceTensors(
            torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g), 0
        )

    return tensor_benchmark([exp(n_train) for _ in range(T)], [exp(EVAL) for _ in range(T)])


def _strategy(metrics):
    model = seeded_mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    return FastNaive(
        model=model,
        optimizer=opt,
        train_mb_size=BATCH,
        evaluator=EvaluationPlugin(*metrics, loggers=[]),
    )


def run(quick: bool) -> list[PerfResult]:
    warnings.filterwarnings("ignore", message="No loggers specified")
    n_train = 640 if quick else 4000
    beta = 10 if quick else 20
    bm = _bench(n_train)
    probe_s: list[float] = []
    iter_s: list[float] = []
    plain_first: list[float] = []
    point_s: list[float] = []
    plugin_box: list[KnowledgeTransferMetric] = []
    n_track = 2  # experiences of the tracked run that prices an evaluation point

    def with_probes():
        kt = KnowledgeTransferMetric(bm.test_stream, beta=beta, eval_samples=EVAL)
        s = _strategy([kt])
        for e in bm.train_stream:
            s.train(e)
        probe_s.append(kt.probe_seconds)
        plugin_box[:] = [kt]

    def plain():
        s = _strategy([])
        per_exp = []
        for e in bm.train_stream:
            t0 = time.perf_counter()
            s.train(e)
            per_exp.append(time.perf_counter() - t0)
        iter_s.append(sum(per_exp) / s.clock.train_iterations)
        plain_first.append(sum(per_exp[:n_track]))

    def tracked():
        # a point in the main loop: one 1,000-sample experience evaluated after every update
        tr = StabilityGapMetric(bm.test_stream, samples_per_exp=EVAL, tracked=[0])
        s = _strategy([tr])
        t0 = time.perf_counter()
        for e in bm.train_stream[:n_track]:
            s.train(e)
        t = time.perf_counter() - t0
        point_s.append((t, tr.n_points))

    programs = {"probes": with_probes, "plain": plain, "tracked": tracked}
    interleaved_times(programs, repeats=2 if quick else 4)
    kt = plugin_box[0]
    t_tracked = median([t for t, _ in point_s])
    n_points = point_s[0][1]
    per_point = (t_tracked - median(plain_first)) / n_points
    n_probes = 2 * T - 1
    iters, points = n_probes * beta, n_probes * (beta + 1)
    assert kt.probe_updates == iters and kt.probe_points == points
    reference = iters * median(iter_s) + points * per_point
    ours = median(probe_s)
    return [
        PerfResult.wall_time(
            "P4",
            f"transfer probes, T={T}, beta={beta}: wall time vs their work in the main loop",
            ours,
            reference,
            1.2,
            notes=(
                f"{n_probes} probes, {iters} iterations at {1e3 * median(iter_s):.3f} ms, "
                f"{points} points at {1e3 * per_point:.3f} ms (tracker in the main loop)"
            ),
        )
    ]


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r.as_dict())
