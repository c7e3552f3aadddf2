"""Tiny synthetic streams for the device tests (importable as ``device_streams:flat`` and
``device_streams:images``): Gaussian class blobs, one random relabelling per experience."""

from __future__ import annotations

import torch

from avalanche_neumod.benchmarks import ExperienceTensors, tensor_benchmark


def _stream(shape: tuple[int, ...], n_experiences: int, n: int, classes: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, *shape, generator=g) * 2
    train, test = [], []
    for _ in range(n_experiences):
        perm = torch.randperm(classes, generator=g)
        for part, size in ((train, n), (test, n // 2)):
            y = torch.randint(0, classes, (size,), generator=g)
            x = centers[y] + torch.randn(size, *shape, generator=g)
            part.append(ExperienceTensors(x, perm[y], 0))
    bm = tensor_benchmark(train, test)
    bm.neumod_info = {"name": "device-toy", "input_shape": list(shape), "num_classes": classes}
    return bm


def flat(n_experiences: int = 2, n: int = 48, dim: int = 8, classes: int = 4, seed: int = 0):
    """``n_experiences`` experiences of ``n`` vectors of ``dim`` features."""
    return _stream((dim,), n_experiences, n, classes, seed)


def images(n_experiences: int = 2, n: int = 32, size: int = 16, classes: int = 4, seed: int = 0):
    """``n_experiences`` experiences of ``n`` RGB images ``size`` x ``size``."""
    return _stream((3, size, size), n_experiences, n, classes, seed)
