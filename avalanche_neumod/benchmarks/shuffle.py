"""Shuffle CIFAR-10: the class ids are permuted in every task (concept drift, same inputs)."""

from __future__ import annotations

from typing import Optional

from ..argument_rules import checked, integer
from ._common import (
    CIFAR10,
    augmentation,
    build,
    distinct_permutations,
    label_scenario,
    normalise,
    rng,
    stream_info,
    task_tensor,
    train_test_subsets,
)
from .datasets import PathLike, load_cifar10
from .tensor_data import ExperienceTensors


@checked(n_experiences=integer(1))
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
    perms = distinct_permutations(n_experiences, 10, rng(seed, "class-permutations"))
    test_k = None if pool_per_class is None else min(pool_per_class, 1000)
    d = load_cifar10(root, download=download, train_per_class=pool_per_class, test_per_class=test_k)
    tr, te = train_test_subsets(d, train_size, test_size, seed)
    x_tr, x_te = normalise(d.x_train[tr], CIFAR10), normalise(d.x_test[te], CIFAR10)
    y_tr, y_te = d.y_train[tr], d.y_test[te]
    train, test = [], []
    for k, p in enumerate(perms):
        # targets <- pi_k[targets] on train and test alike; the inputs stay
        train.append(ExperienceTensors(x_tr, p[y_tr], task_tensor(len(y_tr), k, task_labels)))
        test.append(ExperienceTensors(x_te, p[y_te], task_tensor(len(y_te), k, task_labels)))
    info = stream_info(
        "shuffle_cifar10",
        (3, 32, 32),
        10,
        label_scenario(task_labels),
        "test experience k: accuracy on the test subset with labels pi_k[y]",
        seed=seed,
        train_size=len(y_tr),
        test_size=len(y_te),
    )
    tf = augmentation(augment, CIFAR10)
    return build(train, test, info, tf, class_permutations=perms, train_indices=tr, test_indices=te)
