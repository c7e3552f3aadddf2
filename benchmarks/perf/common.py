"""Shared helpers for the performance benchmarks (bars: docs/suites.md#performance-bars).

Every benchmark module in this folder exposes ``run(quick: bool) -> list[PerfResult]``;
``run_all.py`` runs them in one process, one after the other, and writes
``reports/perf.md``. Ratios are taken within one run: the compared programs are
timed interleaved (A, B, A, B, ...) and the ratio of medians is reported, so
machine noise hits both sides alike.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable


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


def interleaved_times(
    programs: dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 1
) -> dict[str, list[float]]:
    """Wall times of each program, run interleaved ``repeats`` times after ``warmup`` rounds."""
    for _ in range(warmup):
        for fn in programs.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in programs}
    for _ in range(repeats):
        for name, fn in programs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def hand_train_epoch(model, opt, d, batch: int) -> None:
    """The hand-written reference loop's epoch over one experience's tensors ``d``
    (shuffled minibatches, cross-entropy, one optimizer step each)."""
    import torch

    order = torch.randperm(len(d))
    for i in range(0, len(d), batch):
        idx = order[i : i + batch]
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(d.x[idx]), d.y[idx]).backward()
        opt.step()
