"""Experiences that index a shared pool of tensors (with-replacement samples, joint unions).

NGM streams train each experience on ``iterations * batch_size`` samples drawn
with replacement, and joint variants train experience k on the union of
experiences 0..k. Stored as copies, both would multiply memory (a CIFAR
experience of 400 x 256 samples is 1.3 GB as float32). :class:`SampledTensors`
stores only row indices into a shared pool and gathers ``x`` when read (one
experience at a time: the last one gathered is kept, so the fast path gathers
once per experience), and
:func:`assemble` builds the Avalanche datasets over the pool by index. To every
reader it is an ordinary :class:`ExperienceTensors`.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Optional, Sequence, Union

import torch
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
from avalanche.benchmarks.scenarios.task_aware import with_task_labels
from avalanche.benchmarks.utils.classification_dataset import (
    TaskAwareSupervisedClassificationDataset,
)
from avalanche.benchmarks.utils.data_attribute import DataAttribute, TaskLabels
from avalanche.benchmarks.utils.transform_groups import TransformGroups
from torch.utils.data import Dataset

from .tensor_data import TENSORS_ATTR, ExperienceTensors, tensor_benchmark, tensor_dataset

_LAST: dict[str, Any] = {}


class SampledTensors(ExperienceTensors):
    """Rows ``index`` of ``pool``: ``y`` and ``t`` stored, ``x`` gathered on each read."""

    def __init__(self, pool: ExperienceTensors, index: torch.Tensor):  # noqa: D107
        index = torch.as_tensor(index, dtype=torch.long)
        if index.dim() != 1:
            raise ValueError("index must be one-dimensional")
        if len(index) and (int(index.min()) < 0 or int(index.max()) >= len(pool)):
            raise ValueError(f"index out of range for a pool of {len(pool)} items")
        self.pool = pool
        self.index = index
        self._y = pool.y[index]
        self._t = pool.t[index]
        self._moved = {}

    @property
    def x(self) -> torch.Tensor:  # type: ignore[override]
        # one gathered experience is kept (process-wide), so repeated reads of the
        # experience in training are free and memory stays about one experience
        last = _LAST.get("ref")
        if last is not None and last() is self:
            return _LAST["x"]
        x = self.pool.x[self.index.to(self.pool.x.device)]
        _LAST["ref"], _LAST["x"] = weakref.ref(self), x
        return x

    @property
    def y(self) -> torch.Tensor:  # type: ignore[override]
        return self._y

    @property
    def t(self) -> torch.Tensor:  # type: ignore[override]
        return self._t

    def __repr__(self) -> str:
        return f"SampledTensors({len(self.index)} of a pool of {len(self.pool)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExperienceTensors):
            return NotImplemented
        return (
            torch.equal(self.x, other.x)
            and torch.equal(self.y, other.y)
            and torch.equal(self.t, other.t)
        )

    __hash__ = None  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self.index)

    def to(self, device: Union[str, torch.device]) -> ExperienceTensors:
        """The same rows of the pool moved to ``device`` (pool moved once, then cached)."""
        device = torch.device(device)
        if self.pool.x.device == device:
            return self
        key = str(device)
        if key not in self._moved:
            self._moved[key] = SampledTensors(self.pool.to(device), self.index.to(device))
        return self._moved[key]

    def subset(self, idx: torch.Tensor) -> ExperienceTensors:
        return SampledTensors(self.pool, self.index[idx])


class _IndexedSamples(Dataset):
    """``(pool.x[index[i]], int(y[i]))`` samples for Avalanche's per-sample path."""

    def __init__(self, data: SampledTensors):
        self.x, self.index, self.y = data.pool.x, data.index, data.y

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        return self.x[self.index[i]], int(self.y[i])


def _dataset(
    data: ExperienceTensors, train_transform: Optional[Callable], eval_transform: Optional[Callable]
) -> TaskAwareSupervisedClassificationDataset:
    if not isinstance(data, SampledTensors):
        return tensor_dataset(data, train_transform, eval_transform)
    groups = TransformGroups({"train": train_transform, "eval": eval_transform})
    return TaskAwareSupervisedClassificationDataset(
        [_IndexedSamples(data)],
        data_attributes=[DataAttribute(data.y, "targets"), TaskLabels(data.t)],
        transform_groups=groups,
    )


def assemble(
    train: Sequence[ExperienceTensors],
    test: Sequence[ExperienceTensors],
    train_transform: Optional[Callable] = None,
    eval_transform: Optional[Callable] = None,
    train_batch_transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
) -> Any:
    """:func:`tensor_benchmark`, also for :class:`SampledTensors` (datasets by index)."""
    if not any(isinstance(d, SampledTensors) for d in list(train) + list(test)):
        return tensor_benchmark(train, test, train_transform, eval_transform, train_batch_transform)
    if len(train) < 1:
        raise ValueError("a benchmark needs at least one training experience")
    bm = benchmark_from_datasets(
        train=[_dataset(d, train_transform, eval_transform).train() for d in train],
        test=[_dataset(d, train_transform, eval_transform).eval() for d in test],
    )
    bm = with_task_labels(with_classes_timeline(bm))
    for exp, d in zip(bm.train_stream, train):
        setattr(exp, TENSORS_ATTR, d)
        exp.train_batch_transform = train_batch_transform
    for exp, d in zip(bm.test_stream, test):
        setattr(exp, TENSORS_ATTR, d)
    return bm
