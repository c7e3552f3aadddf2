"""Shared helpers for the performance benchmarks (bars: docs/suites.md#performance-bars).

Every benchmark module in this folder exposes ``run(quick: bool) -> list[PerfResult]``;
``run_all.py`` runs them in one process, one after the other, and writes
``reports/perf.md``. Ratios are taken within one run: the compared programs are
timed interleaved (A, B, A, B, ...) and the ratio of medians is reported, so
machine noise hits both sides alike. On an accelerator, every timed call ends with a
synchronisation (:func:`device_sync`), so a time covers the work queued, not just its
launch.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional


@dataclass
class PerfResult:
    """One measured ratio against its bar."""

    id: str  # e.g. "P1", "P2 CBP"
    what: str  # what is compared
    ours: float  # median measurement of our side
    reference: float  # median measurement of the reference side
    unit: str  # unit of ours/reference ("s", "samples/s", ...)
    ratio: float  # ours / reference for times (reference / ours for throughputs)
    bar: float  # the bar on the ratio
    higher_is_better: bool = False  # True when the bar is a minimum (throughput ratios)
    notes: str = ""

    @property
    def passed(self) -> bool:
        return self.ratio >= self.bar if self.higher_is_better else self.ratio <= self.bar

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}

    @classmethod
    def wall_time(
        cls, id: str, what: str, ours: float, reference: float, bar: float, notes: str = ""
    ) -> "PerfResult":
        """A wall-time row: seconds on both sides, ratio ``ours / reference``, bar a maximum."""
        return cls(id, what, ours, reference, "s", ours / reference, bar, notes=notes)


def device_sync(device="cpu") -> Optional[Callable[[], None]]:
    """What waits for ``device``'s queued work (``torch.cuda.synchronize``), None on the CPU."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return None


def interleaved_times(
    programs: dict[str, Callable[[], object]],
    repeats: int = 5,
    warmup: int = 1,
    sync: Optional[Callable[[], None]] = None,
) -> dict[str, list[float]]:
    """Wall times of each program, run interleaved ``repeats`` times after ``warmup`` rounds;
    ``sync`` (e.g. :func:`device_sync`) is called before each timing starts and ends."""
    for _ in range(warmup):
        for fn in programs.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in programs}
    for _ in range(repeats):
        for name, fn in programs.items():
            if sync is not None:
                sync()
            t0 = time.perf_counter()
            fn()
            if sync is not None:
                sync()
            times[name].append(time.perf_counter() - t0)
    return times


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def seeded_mlp(device="cpu"):
    """The P1/P5/P4/D2 model: ``torch.manual_seed(0)``, then an MLP 784-100-100-10 (on
    ``device``)."""
    import torch

    from avalanche_neumod.models import MLP

    torch.manual_seed(0)
    model = MLP(784, (100, 100), 10)
    return model if torch.device(device).type == "cpu" else model.to(device)


def strategy_run(
    cls, bm, batch: int, evaluate: bool = False, eval_mb_size: int = 1024, device="cpu"
):
    """A program training a fresh :func:`seeded_mlp` with ``cls`` (SGD, lr 0.01, one epoch of
    minibatch ``batch`` per experience, no loggers) on ``bm``'s train stream; ``evaluate``:
    with experience and stream accuracy, the whole test stream evaluated after each experience
    in batches of ``eval_mb_size``. The strategy runs on ``device``."""
    import warnings

    import torch
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.training.plugins import EvaluationPlugin

    def run():
        model = seeded_mlp(device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if evaluate:
                metrics = accuracy_metrics(experience=True, stream=True)
                extra = {"eval_mb_size": eval_mb_size}
            else:
                metrics, extra = [], {}
            s = cls(
                model=model,
                optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
                train_mb_size=batch,
                train_epochs=1,
                evaluator=EvaluationPlugin(*metrics, loggers=[]),
                device=device,
                **extra,
            )
        for exp in bm.train_stream:
            s.train(exp, eval_streams=[])
            if evaluate:
                s.eval(bm.test_stream)

    return run


def hand_run(bm, batch: int, evaluate: bool = False, eval_mb_size: int = 1024, device="cpu"):
    """The reference program of :func:`strategy_run`, written by hand over the same tensors:
    :func:`seeded_mlp`, SGD (lr 0.01), :func:`hand_train_epoch` per experience; ``evaluate``:
    then, in eval mode under ``torch.no_grad()``, batches of ``eval_mb_size`` of every test
    experience, its accuracy and the stream's. On ``device``: the tensors are moved there
    once, before timing (as our loader moves each experience once)."""
    import torch

    train = [exp.tensors.to(device) for exp in bm.train_stream]
    test = [exp.tensors.to(device) for exp in bm.test_stream]

    def run():
        model = seeded_mlp(device)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        for d in train:
            hand_train_epoch(model, opt, d, batch)
            if evaluate:
                _hand_eval(model, test, eval_mb_size)

    return run


def _hand_eval(model, test: list, eval_mb_size: int) -> list[float]:
    """Per-experience accuracies then the stream's (what the evaluator reports)."""
    import torch

    model.eval()
    with torch.no_grad():
        accs, correct, total = [], 0, 0
        for e in test:
            c = 0
            for j in range(0, len(e), eval_mb_size):
                hits = model(e.x[j : j + eval_mb_size]).argmax(1) == e.y[j : j + eval_mb_size]
                c += int(hits.sum())
            accs.append(c / len(e))
            correct, total = correct + c, total + len(e)
    model.train()
    return accs + [correct / total]


def against_hand_loop(
    id: str, task: str, what: str, times: dict[str, list[float]], bar: float
) -> list[PerfResult]:
    """P1/P5's rows from ``times`` of ``"hand"``, ``"ours"`` (FastNaive) and ``"stock"``
    (Avalanche's Naive): ours against the hand loop with ``bar``, stock beside it, no bar."""
    hand, ours, stock = (median(times[k]) for k in ("hand", "ours", "stock"))
    return [
        PerfResult.wall_time(id, f"FastNaive{task} vs hand loop ({what})", ours, hand, bar),
        PerfResult.wall_time(
            f"{id} (stock)",
            f"Avalanche Naive{task} vs hand loop ({what})",
            stock,
            hand,
            float("inf"),
            notes="reference only, no bar",
        ),
    ]


def hand_train_epoch(model, opt, d, batch: int) -> None:
    """The hand-written reference loop's epoch over one experience's tensors ``d``
    (shuffled minibatches, cross-entropy, one optimizer step each)."""
    import torch

    order = torch.randperm(len(d)).to(d.y.device)  # drawn on the CPU, as our loader does
    for i in range(0, len(d), batch):
        idx = order[i : i + batch]
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(d.x[idx]), d.y[idx]).backward()
        opt.step()
