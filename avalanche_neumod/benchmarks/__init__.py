"""Benchmark streams and dataset loading (DESIGN 8)."""

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
from .streams import permuted_mnist, random_label_cifar10, random_label_mnist
from .tensor_data import ExperienceTensors, experience_tensors, tensor_benchmark, tensor_dataset

__all__ = [
    "DatasetNotFoundError",
    "ExperienceTensors",
    "ImageSplits",
    "data_root",
    "experience_tensors",
    "load_cifar10",
    "load_cifar100",
    "load_image_folder",
    "load_mnist",
    "load_tiny_imagenet",
    "permuted_mnist",
    "random_label_cifar10",
    "random_label_mnist",
    "tensor_benchmark",
    "tensor_dataset",
]
