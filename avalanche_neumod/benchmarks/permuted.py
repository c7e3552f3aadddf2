"""Permuted MNIST (DESIGN 8): one fixed pixel permutation per task."""

from __future__ import annotations

from typing import Optional

import torch

from ._common import MNIST_MEAN, MNIST_STD, build, check_int, normalise, rng, subset, task_tensor
from .datasets import PathLike, load_mnist
from .tensor_data import ExperienceTensors


def pixel_permutations(n_tasks: int, n_pixels: int, gen: torch.Generator) -> torch.Tensor:
    """``[n_tasks, n_pixels]``: row 0 the identity, later rows random permutations
    (redrawn in the vanishing case of a repeat, so every task differs)."""
    perms = [torch.arange(n_pixels)]
    while len(perms) < n_tasks:
        p = torch.randperm(n_pixels, generator=gen)
        if not any(torch.equal(p, q) for q in perms):
            perms.append(p)
    return torch.stack(perms)


def permuted_mnist(
    n_experiences: int = 10,
    train_size: Optional[int] = 10000,
    test_size: Optional[int] = 1000,
    seed: int = 0,
    root: Optional[PathLike] = None,
    task_labels: bool = False,
    download: bool = False,
):
    """Permuted MNIST: each experience is a fixed pixel permutation of the same images.

    Construction: a seeded subset of ``train_size`` MNIST train images and
    ``test_size`` test images (``None``: all), standardised with MNIST's mean and
    std (0.1307, 0.3081), float32 ``[N, 1, 28, 28]``. Experience 0 uses the
    identity; experience k >= 1 one fixed random permutation of the 784 pixels,
    applied identically to its train and test images (``bm.permutations``,
    ``[T, 784]``; the subsets' dataset indices in ``bm.train_indices`` and
    ``bm.test_indices``). Labels are the digits (10 classes in every experience).
    Task labels are 0 (domain-incremental, one head) unless ``task_labels``.

    Accuracy: test experience k is the test subset under permutation k, so
    accuracy on it measures how well the current network solves task k.

    Defaults (paper scale, Dohare et al. / Kumar et al.): 10 experiences, 10,000
    train and 1,000 test images; train 1 epoch per task at batch 16.
    """
    check_int("n_experiences", n_experiences)
    d = load_mnist(root, download=download)
    tr = subset(len(d.y_train), train_size, rng(seed, "train-subset"), "train_size")
    te = subset(len(d.y_test), test_size, rng(seed, "test-subset"), "test_size")
    x_tr = normalise(d.x_train[tr], MNIST_MEAN, MNIST_STD).flatten(1)
    x_te = normalise(d.x_test[te], MNIST_MEAN, MNIST_STD).flatten(1)
    y_tr, y_te = d.y_train[tr], d.y_test[te]
    perms = pixel_permutations(n_experiences, 28 * 28, rng(seed, "permutations"))
    train, test = [], []
    for k, p in enumerate(perms):
        # x_perm[:, i] = x[:, p[i]]: pixel i of task k shows original pixel p[i]
        train.append(
            ExperienceTensors(
                x_tr[:, p].reshape(-1, 1, 28, 28), y_tr, task_tensor(len(y_tr), k, task_labels)
            )
        )
        test.append(
            ExperienceTensors(
                x_te[:, p].reshape(-1, 1, 28, 28), y_te, task_tensor(len(y_te), k, task_labels)
            )
        )
    info = {
        "name": "permuted_mnist",
        "input_shape": (1, 28, 28),
        "num_classes": 10,
        "scenario": "task" if task_labels else "domain",
        "task_labels": task_labels,
        "seed": seed,
        "train_size": len(y_tr),
        "test_size": len(y_te),
        "accuracy": "test experience k: accuracy on the test subset under task k's permutation",
    }
    return build(train, test, info, permutations=perms, train_indices=tr, test_indices=te)
