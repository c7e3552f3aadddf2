"""Shuffle CIFAR-10 (DESIGN 8): the class ids are permuted in every task (concept drift)."""

from __future__ import annotations

import math
from typing import Optional

import torch

from ._common import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    augmentation,
    build,
    check_int,
    normalise,
    rng,
    subset,
    task_tensor,
)
from .datasets import PathLike, load_cifar10
from .tensor_data import ExperienceTensors


def class_permutations(n_tasks: int, n_classes: int, gen: torch.Generator) -> torch.Tensor:
    """``[n_tasks, n_classes]``: row 0 the identity, later rows distinct random permutations."""
    if n_tasks > math.factorial(n_classes):
        raise ValueError(
            f"n_experiences={n_tasks} exceeds the {math.factorial(n_classes)} distinct "
            f"permutations of {n_classes} classes"
        )
    perms = [torch.arange(n_classes)]
    while len(perms) < n_tasks:
        p = torch.randperm(n_classes, generator=gen)
        if not any(torch.equal(p, q) for q in perms):
            perms.append(p)
    return torch.stack(perms)


def shuffle_cifar10(
    n_experiences: int = 10,
    train_size: Optional[int] = 10000,
    test_size: Optional[int] = 2000,
    seed: int = 0,
    root: Optional[PathLike] = None,
    task_labels: bool = False,
    augment: bool = False,
    pool_per_class: Optional[int] = None,
    download: bool = False,
):
    """Shuffle CIFAR-10: the same images, the 10 class ids permuted anew in each task.

    Construction: seeded subsets of ``train_size`` train and ``test_size`` test
    images (``None``: all), float32 ``[N, 3, 32, 32]`` standardised per channel.
    Task k relabels every image ``y <- pi_k[y]`` with one permutation ``pi_k`` of
    the 10 ids (``bm.class_permutations``), applied identically to its train and
    test data. Task 0 is the identity (plain CIFAR-10); later permutations are
    distinct random ones. ``augment`` adds crop + flip on training batches (off by
    default). ``pool_per_class`` draws the subsets from the first k images of each
    class only (fewer files decoded). Task labels 0 unless ``task_labels``.

    Accuracy: test experience k is the test subset labelled by ``pi_k``: accuracy
    on it is accuracy under task k's class mapping (concept drift, inputs fixed).
    Defaults: 10 experiences, 10,000 train, 2,000 test images.
    """
    check_int("n_experiences", n_experiences)
    perms = class_permutations(n_experiences, 10, rng(seed, "class-permutations"))
    test_k = None if pool_per_class is None else min(pool_per_class, 1000)
    d = load_cifar10(root, download=download, train_per_class=pool_per_class, test_per_class=test_k)
    tr = subset(len(d.y_train), train_size, rng(seed, "train-subset"), "train_size")
    te = subset(len(d.y_test), test_size, rng(seed, "test-subset"), "test_size")
    x_tr = normalise(d.x_train[tr], CIFAR10_MEAN, CIFAR10_STD)
    x_te = normalise(d.x_test[te], CIFAR10_MEAN, CIFAR10_STD)
    y_tr, y_te = d.y_train[tr], d.y_test[te]
    train, test = [], []
    for k, p in enumerate(perms):
        # targets <- pi_k[targets] on train and test alike (DESIGN 8)
        train.append(ExperienceTensors(x_tr, p[y_tr], task_tensor(len(y_tr), k, task_labels)))
        test.append(ExperienceTensors(x_te, p[y_te], task_tensor(len(y_te), k, task_labels)))
    info = {
        "name": "shuffle_cifar10",
        "input_shape": (3, 32, 32),
        "num_classes": 10,
        "scenario": "task" if task_labels else "domain",
        "task_labels": task_labels,
        "seed": seed,
        "train_size": len(y_tr),
        "test_size": len(y_te),
        "accuracy": "test experience k: accuracy on the test subset with labels pi_k[y]",
    }
    tf = augmentation(augment, CIFAR10_MEAN, CIFAR10_STD)
    return build(train, test, info, tf, class_permutations=perms, train_indices=tr, test_indices=te)
