"""Shared pieces of the fast-path tests: random toy tensors (6 features, 3 classes), toy
benchmarks of them, and a strategy on a fresh MLP 6-8-3 with SGD (lr 0.1)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from avalanche_neumod.benchmarks import ExperienceTensors, tensor_benchmark
from avalanche_neumod.models import MLP


def toy_data(n: int = 50, seed: int = 0, d: int = 6, classes: int = 3) -> ExperienceTensors:
    """``n`` rows of standard normal features and uniform labels, from a private ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return ExperienceTensors(
        torch.randn(n, d, generator=g), torch.randint(0, classes, (n,), generator=g), 0
    )


def toy_bench(n_exp: int = 2, n: int = 50, n_test: int = 20):
    """``n_exp`` experiences: ``n`` train rows (seed k), ``n_test`` test rows (seed 100 + k)."""
    return tensor_benchmark(
        [toy_data(n, k) for k in range(n_exp)], [toy_data(n_test, 100 + k) for k in range(n_exp)]
    )


def toy_strategy(cls, model: Optional[nn.Module] = None, **kwargs):
    """``cls`` on ``model`` (default: a new MLP 6-8-3, drawn from the global RNG) with SGD at
    lr 0.1; ``kwargs`` go to ``cls``."""
    model = MLP(6, (8,), 3) if model is None else model
    return cls(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), **kwargs)
