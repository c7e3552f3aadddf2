"""A tiny synthetic stream for the suite tests (importable as ``toy:toy_stream``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from avalanche_neumod.benchmarks import ExperienceTensors, tensor_benchmark
from avalanche_neumod.training import FastNaive


def toy_stream(n_experiences: int = 2, n: int = 64, dim: int = 8, classes: int = 4, seed: int = 0):
    """Gaussian blobs, one random linear relabelling of the same inputs per experience.

    With ``$NEUMOD_TEST_PID_DIR`` set, a file named after the building process's id is
    added there (the launcher tests check which process built each cell)."""
    pid_dir = os.environ.get("NEUMOD_TEST_PID_DIR")
    if pid_dir:
        Path(pid_dir, f"{os.getpid()}-{n_experiences}-{dim}").touch()
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=g) * 3
    train, test = [], []
    for _ in range(n_experiences):
        perm = torch.randperm(classes, generator=g)
        for part, size in ((train, n), (test, n // 2)):
            y = torch.randint(0, classes, (size,), generator=g)
            x = centers[y] + torch.randn(size, dim, generator=g)
            part.append(ExperienceTensors(x, perm[y], 0))
    bm = tensor_benchmark(train, test)
    bm.neumod_info = {"name": "toy", "input_shape": [dim], "num_classes": classes}
    return bm


class SlowNaive(FastNaive):
    """FastNaive that pauses after training each experience (preemption tests)."""

    def __init__(self, *, pause: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.pause = pause

    def _after_training_exp(self, **kw):
        super()._after_training_exp(**kw)
        time.sleep(self.pause)
