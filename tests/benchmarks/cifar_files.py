"""Write small CIFAR-10/100 files in torchvision's pickle format (for tests)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def write_cifar10(root: Path, per_batch: int = 20, n_test: int = 30, seed: int = 0) -> Path:
    """``root/cifar-10-batches-py`` with 5 train batches of ``per_batch`` images."""
    rs = np.random.RandomState(seed)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        _dump(
            d / f"data_batch_{i}",
            {
                "batch_label": "training batch",
                "labels": [int(v) for v in rs.randint(0, 10, per_batch)],
                "data": rs.randint(0, 256, (per_batch, 3072)).astype(np.uint8),
            },
        )
    _dump(
        d / "test_batch",
        {
            "labels": [int(v) for v in rs.randint(0, 10, n_test)],
            "data": rs.randint(0, 256, (n_test, 3072)).astype(np.uint8),
        },
    )
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    _dump(d / "batches.meta", {"label_names": names, "num_cases_per_batch": per_batch})
    return d


def write_cifar100(root: Path, per_class: int = 6, test_per_class: int = 3, seed: int = 0) -> Path:
    """``root/cifar-100-python`` with ``per_class`` train images of each of 100 classes;
    coarse label of fine class c is c // 5 (so superclasses are known to the test)."""
    rs = np.random.RandomState(seed)
    d = root / "cifar-100-python"
    d.mkdir(parents=True, exist_ok=True)
    for name, k in (("train", per_class), ("test", test_per_class)):
        fine = np.repeat(np.arange(100), k)
        rs.shuffle(fine)
        _dump(
            d / name,
            {
                "fine_labels": [int(v) for v in fine],
                "coarse_labels": [int(v) // 5 for v in fine],
                "data": rs.randint(0, 256, (len(fine), 3072)).astype(np.uint8),
            },
        )
    _dump(
        d / "meta",
        {
            "fine_label_names": [f"fine{i}" for i in range(100)],
            "coarse_label_names": [f"coarse{i}" for i in range(20)],
        },
    )
    return d
