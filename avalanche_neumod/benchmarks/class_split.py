"""Class-Split CIFAR-100 and Tiny-ImageNet: disjoint class groups, one per experience."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

from ..argument_rules import checked, integer
from ._common import (
    CIFAR100,
    SCENARIOS,
    TINY_IMAGENET,
    Stats,
    augmentation,
    build,
    check_choice,
    class_group_experiences,
    rng,
    stream_info,
)
from .datasets import ImageSplits, PathLike, load_cifar100, load_tiny_imagenet

ClassOrder = Union[None, str, Sequence[Union[int, str]]]
CLASS_ORDERS = ("random", "natural")


def resolve_class_order(
    class_order: ClassOrder, classes: Sequence[str], gen: torch.Generator
) -> torch.Tensor:
    """The class ids in experience order.

    ``None`` or ``"random"``: a seeded permutation; ``"natural"``: ``0..C-1``; a
    sequence: a permutation of all class ids or all class names.
    """
    n = len(classes)
    if class_order is None or isinstance(class_order, str):
        order = check_choice(
            "class_order", "random" if class_order is None else class_order, CLASS_ORDERS
        )
        return torch.randperm(n, generator=gen) if order == "random" else torch.arange(n)
    names = {c: i for i, c in enumerate(classes)}
    ids = []
    for c in class_order:
        if isinstance(c, str):
            if c not in names:
                raise ValueError(f"unknown class {c!r} in class_order")
            ids.append(names[c])
        elif isinstance(c, int) and not isinstance(c, bool) and 0 <= c < n:
            ids.append(c)
        else:
            raise ValueError(f"class_order entry {c!r} is not a class id in 0..{n - 1}")
    if sorted(ids) != list(range(n)):
        raise ValueError(
            f"class_order must list each of the {n} classes exactly once "
            f"(got {len(ids)} entries, {len(set(ids))} distinct)"
        )
    return torch.tensor(ids, dtype=torch.long)


@checked(n_experiences=integer(1))
def _class_split(
    name: str,
    d: ImageSplits,
    stats: Stats,
    n_experiences: int,
    seed: int,
    scenario: str,
    class_order: ClassOrder,
    relabel: bool,
    augment: bool,
):
    """The stream; ``relabel``: targets are class positions within their group."""
    check_choice("scenario", scenario, SCENARIOS)
    n_classes = len(d.classes)
    if n_classes % n_experiences:
        raise ValueError(
            f"n_experiences={n_experiences} must divide the {n_classes} classes "
            "(equal disjoint groups)"
        )
    if relabel and scenario != "task":
        raise ValueError(
            'class_ids_from_zero_in_each_exp needs scenario="task" (one head per task)'
        )
    order = resolve_class_order(class_order, d.classes, rng(seed, "class-order"))
    groups = order.view(n_experiences, -1)
    task_labels = scenario == "task"
    train = class_group_experiences(
        d.x_train, d.y_train, groups, stats, task_labels, ids_within_group=relabel
    )
    test = class_group_experiences(
        d.x_test, d.y_test, groups, stats, task_labels, ids_within_group=relabel
    )
    per_exp = n_classes // n_experiences
    info = stream_info(
        name,
        train[0].x.shape[1:],
        per_exp if relabel else n_classes,
        scenario,
        "test experience k: accuracy on the test images of group k's classes "
        + (
            "(task-incremental: task label k given)"
            if task_labels
            else "(class-incremental: one head over all classes, no task label)"
        ),
        classes_per_experience=per_exp,
        seed=seed,
        class_order=order.tolist(),
    )
    tf = augmentation(augment, stats)
    return build(train, test, info, tf, class_groups=groups, class_names=d.classes)


def class_split_cifar100(
    n_experiences: int = 10,
    seed: int = 0,
    root: Optional[PathLike] = None,
    scenario: str = "class",
    class_order: ClassOrder = None,
    train_per_class: Optional[int] = None,
    test_per_class: Optional[int] = None,
    class_ids_from_zero_in_each_exp: bool = False,
    augment: bool = False,
    download: bool = False,
):
    """Class-Split CIFAR-100: 100 classes in ``n_experiences`` disjoint equal groups.

    Construction: the class order (``None``/"random": seeded; "natural"; or an
    explicit list of ids or names) is cut into consecutive groups
    (``bm.class_groups``, ``[T, 100 / T]``); experience k holds every train (test)
    image of group k, float32 ``[N, 3, 32, 32]`` standardised per channel.
    ``scenario="class"``: one head, targets are the original class ids, task
    label 0; ``"task"``: task labels 0..T-1 (and with
    ``class_ids_from_zero_in_each_exp`` targets 0..C/T-1 within each experience).
    ``train_per_class`` / ``test_per_class``: the first k images per class (CPU
    presets). ``augment``: crop (padding 4) + flip on training batches (default off).

    Accuracy: test experience k holds the test images of group k's classes.
    Defaults: 10 experiences of 10 classes, all 500 train / 100 test images per class.
    """
    d = load_cifar100(
        root, download=download, train_per_class=train_per_class, test_per_class=test_per_class
    )
    return _class_split(
        "class_split_cifar100",
        d,
        CIFAR100,
        n_experiences,
        seed,
        scenario,
        class_order,
        relabel=class_ids_from_zero_in_each_exp,
        augment=augment,
    )


def class_split_tiny_imagenet(
    n_experiences: int = 20,
    seed: int = 0,
    root: Optional[PathLike] = None,
    scenario: str = "class",
    class_order: ClassOrder = None,
    train_per_class: Optional[int] = None,
    test_per_class: Optional[int] = None,
    class_ids_from_zero_in_each_exp: bool = False,
    augment: bool = False,
    download: bool = False,
):
    """Class-Split Tiny-ImageNet: 200 classes in ``n_experiences`` disjoint equal groups.

    As :func:`class_split_cifar100`, on Tiny-ImageNet-200 at 64x64 RGB (float32
    ``[N, 3, 64, 64]``); the labelled val set is the test set. Class ids follow
    ``wnids.txt``; ``class_order`` may name wnids.

    Accuracy: test experience k holds the val images of group k's classes.
    Defaults: 20 experiences of 10 classes, all train (500 per class; 100 in
    ``../shared/datasets``) and all 50 val images per class.
    """
    d = load_tiny_imagenet(
        root, download=download, train_per_class=train_per_class, test_per_class=test_per_class
    )
    return _class_split(
        "class_split_tiny_imagenet",
        d,
        TINY_IMAGENET,
        n_experiences,
        seed,
        scenario,
        class_order,
        relabel=class_ids_from_zero_in_each_exp,
        augment=augment,
    )
