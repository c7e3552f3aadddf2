"""Stream generators, all in one namespace, and the registry by name (``docs/streams.md``).

Each generator returns an ordinary Avalanche benchmark (``train_stream``,
``test_stream``) built from in-memory tensors, with ``bm.neumod_info``: name,
``input_shape`` (C, H, W), ``num_classes`` (the head size), ``n_experiences``,
``scenario``, ``seed``, ``accuracy`` (what accuracy on a test experience
means) and ``accuracy_kind`` (``"end_of_task"``: the run's accuracy is the mean over
tasks right after each one, for the memorisation streams; ``"final"``: the mean at
the end of the stream, for the others). :func:`recurring` and :func:`joint` wrap
any of them and keep its ``accuracy_kind``. See ``docs/streams.md``.
"""

from __future__ import annotations

from typing import Any, Callable

from .class_split import class_split_cifar100, class_split_tiny_imagenet
from .ngm import domain_cifar100, ngm_permuted_mnist, rotated_mnist, split_cifar10, split_mnist
from .permuted import permuted_mnist
from .random_label import random_label_cifar10, random_label_mnist
from .shuffle import shuffle_cifar10
from .variants import joint, recurring

STREAMS: dict[str, Callable[..., Any]] = {
    "permuted_mnist": permuted_mnist,
    "random_label_mnist": random_label_mnist,
    "random_label_cifar10": random_label_cifar10,
    "shuffle_cifar10": shuffle_cifar10,
    "class_split_cifar100": class_split_cifar100,
    "class_split_tiny_imagenet": class_split_tiny_imagenet,
    "split_mnist": split_mnist,
    "rotated_mnist": rotated_mnist,
    "ngm_permuted_mnist": ngm_permuted_mnist,
    "split_cifar10": split_cifar10,
    "domain_cifar100": domain_cifar100,
}

VARIANTS: dict[str, Callable[..., Any]] = {"recurring": recurring, "joint": joint}


def get_stream(name: str, **kwargs: Any):
    """Build the stream registered as ``name``; unknown names list the valid ones."""
    if name not in STREAMS:
        raise ValueError(f"unknown stream {name!r}; valid: {', '.join(sorted(STREAMS))}")
    return STREAMS[name](**kwargs)


__all__ = ["STREAMS", "VARIANTS", "get_stream", "joint", "recurring", *STREAMS]
