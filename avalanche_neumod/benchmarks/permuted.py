"""Permuted MNIST: one fixed pixel permutation per task (task 0 the identity)."""

from __future__ import annotations

from typing import Optional

from ..argument_rules import checked, integer
from ._common import (
    MNIST,
    build,
    distinct_permutations,
    label_scenario,
    normalise,
    permuted_pixels,
    rng,
    stream_info,
    train_test_subsets,
)
from .datasets import PathLike, load_mnist


@checked(n_experiences=integer(1))
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
    d = load_mnist(root, download=download)
    tr, te = train_test_subsets(d, train_size, test_size, seed)
    y_tr, y_te = d.y_train[tr], d.y_test[te]
    perms = distinct_permutations(n_experiences, 28 * 28, rng(seed, "permutations"))
    train = permuted_pixels(normalise(d.x_train[tr], MNIST), y_tr, perms, task_labels)
    test = permuted_pixels(normalise(d.x_test[te], MNIST), y_te, perms, task_labels)
    info = stream_info(
        "permuted_mnist",
        (1, 28, 28),
        10,
        label_scenario(task_labels),
        "test experience k: accuracy on the test subset under task k's permutation",
        seed=seed,
        train_size=len(y_tr),
        test_size=len(y_te),
    )
    return build(train, test, info, permutations=perms, train_indices=tr, test_indices=te)
