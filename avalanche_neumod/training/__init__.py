"""Strategies, plugins and the fast training path."""

from .fast_data import FastDataPlugin, TensorBatchLoader
from .template import FastNaive, FastTemplate, with_fast_data

__all__ = ["FastDataPlugin", "FastNaive", "FastTemplate", "TensorBatchLoader", "with_fast_data"]
