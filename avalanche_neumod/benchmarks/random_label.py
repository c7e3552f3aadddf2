"""Random-Label MNIST and CIFAR-10: memorise re-drawn labels, task after task."""

from __future__ import annotations

from typing import Optional

import torch

from ..argument_rules import checked, integer
from ._common import (
    CIFAR10,
    END_OF_TASK,
    MNIST,
    Stats,
    augmentation,
    build,
    label_scenario,
    normalise,
    rng,
    stream_info,
    subset,
    task_tensor,
)
from .datasets import ImageSplits, PathLike, load_cifar10, load_mnist
from .tensor_data import ExperienceTensors

ACCURACY = (
    "test experience k: accuracy on the same training images with task k's labels "
    "(memorisation; there is no held-out set)"
)


def label_permutations(n_tasks: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """``[n_tasks, n]`` random permutations of ``range(n)``, consecutive ones distinct."""
    perms: list[torch.Tensor] = []
    while len(perms) < n_tasks:
        p = torch.randperm(n, generator=gen)
        if n < 2 or not perms or not torch.equal(p, perms[-1]):
            perms.append(p)
    return torch.stack(perms)


@checked(n_experiences=integer(1))
def _random_label(
    name: str,
    d: ImageSplits,
    stats: Stats,
    n_experiences: int,
    n_samples: Optional[int],
    seed: int,
    task_labels: bool,
    augment: bool,
):
    idx = subset(len(d.y_train), n_samples, rng(seed, "train-subset"), "n_samples")
    x = normalise(d.x_train[idx], stats)
    y0 = d.y_train[idx]
    perms = label_permutations(n_experiences, len(y0), rng(seed, "labels"))
    train, test = [], []
    for k, p in enumerate(perms):
        # labels of task k: a permutation of the label vector over the images,
        # so every class keeps its count while each image gets a random label
        data = ExperienceTensors(x, y0[p], task_tensor(len(y0), k, task_labels))
        train.append(data)
        test.append(data)
    info = stream_info(
        name,
        x.shape[1:],
        len(d.classes),
        label_scenario(task_labels),
        ACCURACY,
        accuracy_kind=END_OF_TASK,
        seed=seed,
        n_samples=len(y0),
    )
    tf = augmentation(augment, stats)
    return build(train, test, info, tf, label_permutations=perms, true_labels=y0, train_indices=idx)


def random_label_mnist(
    n_experiences: int = 10,
    n_samples: Optional[int] = 1200,
    seed: int = 0,
    root: Optional[PathLike] = None,
    task_labels: bool = False,
    download: bool = False,
):
    """Random-Label MNIST: the same images, new random labels in every experience.

    Construction: a seeded subset of ``n_samples`` MNIST train images, float32
    ``[N, 1, 28, 28]`` standardised (0.1307, 0.3081). Experience k labels image i
    with ``y[perm_k[i]]``, ``perm_k`` a seeded permutation of the subset
    (``bm.label_permutations``; true labels in ``bm.true_labels``): class counts
    are kept, the labels carry no information about the images. Every experience,
    the first included, has random labels. Test experience k holds the same
    images with task k's labels. Task labels 0 unless ``task_labels``.

    Accuracy: memorisation, i.e. training accuracy on task k's labels
    (``bm.neumod_info["accuracy"]``).

    Defaults: 1,200 images (Kumar et al.), 10 experiences; train many epochs per
    experience at batch 16.
    """
    d = load_mnist(root, download=download)
    return _random_label(
        "random_label_mnist", d, MNIST, n_experiences, n_samples, seed, task_labels, False
    )


def random_label_cifar10(
    n_experiences: int = 10,
    n_samples: Optional[int] = 1200,
    seed: int = 0,
    root: Optional[PathLike] = None,
    task_labels: bool = False,
    augment: bool = False,
    pool_per_class: Optional[int] = None,
    download: bool = False,
):
    """Random-Label CIFAR-10: as :func:`random_label_mnist`, on CIFAR-10 images.

    Inputs float32 ``[N, 3, 32, 32]`` standardised with CIFAR-10's per-channel
    mean and std. ``augment=True`` adds random crop (padding 4) and horizontal
    flip on training batches (off by default, as in the plasticity literature).

    ``pool_per_class``: draw the subset from the first k train images of each
    class only (fewer files decoded; for CPU presets and tests).

    Accuracy: memorisation (training images with task k's labels).
    Defaults: 1,200 images, 10 experiences.
    """
    d = load_cifar10(root, download=download, train_per_class=pool_per_class, test_per_class=1)
    return _random_label(
        "random_label_cifar10", d, CIFAR10, n_experiences, n_samples, seed, task_labels, augment
    )
