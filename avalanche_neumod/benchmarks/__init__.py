"""Benchmark streams and dataset loading.

Seeded, in-memory continual-learning streams as ordinary Avalanche benchmarks: the
plasticity streams (Permuted MNIST, Random-Label MNIST / CIFAR-10, Shuffle
CIFAR-10, Class-Split CIFAR-100 / Tiny-ImageNet), the NGM-SGD stability-gap
streams (fixed iterations per experience, joint), and the recurring and joint
variants of any stream. See ``docs/streams.md``.
"""

from .datasets import (
    DatasetNotFoundError,
    ImageSplits,
    data_root,
    load_cifar10,
    load_cifar100,
    load_image_folder,
    load_mnist,
    load_tiny_imagenet,
)
from .sampled import SampledTensors
from .streams import (
    STREAMS,
    VARIANTS,
    class_split_cifar100,
    class_split_tiny_imagenet,
    domain_cifar100,
    get_stream,
    joint,
    ngm_permuted_mnist,
    permuted_mnist,
    random_label_cifar10,
    random_label_mnist,
    recurring,
    rotated_mnist,
    shuffle_cifar10,
    split_cifar10,
    split_mnist,
)
from .tensor_data import ExperienceTensors, experience_tensors, tensor_benchmark, tensor_dataset

__all__ = [
    "DatasetNotFoundError",
    "ExperienceTensors",
    "ImageSplits",
    "STREAMS",
    "SampledTensors",
    "VARIANTS",
    "class_split_cifar100",
    "class_split_tiny_imagenet",
    "data_root",
    "domain_cifar100",
    "experience_tensors",
    "get_stream",
    "joint",
    "load_cifar10",
    "load_cifar100",
    "load_image_folder",
    "load_mnist",
    "load_tiny_imagenet",
    "ngm_permuted_mnist",
    "permuted_mnist",
    "random_label_cifar10",
    "random_label_mnist",
    "recurring",
    "rotated_mnist",
    "shuffle_cifar10",
    "split_cifar10",
    "split_mnist",
    "tensor_benchmark",
    "tensor_dataset",
]
