"""Benchmark streams and dataset loading (DESIGN 8)."""

from .tensor_data import ExperienceTensors, experience_tensors, tensor_benchmark, tensor_dataset

__all__ = ["ExperienceTensors", "experience_tensors", "tensor_benchmark", "tensor_dataset"]
