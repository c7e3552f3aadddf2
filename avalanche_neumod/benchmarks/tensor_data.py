"""Avalanche benchmarks built from in-memory tensors, which the fast path can slice.

Every experience made here is an ordinary Avalanche ``DatasetExperience`` (its
``dataset`` works with any strategy and the stock loaders) that also carries its
data as tensors in ``experience.tensors`` (:class:`ExperienceTensors`). The fast
path (``avalanche_neumod.training.fast_data``) reads them instead of fetching
samples one at a time. For experiences made elsewhere, :func:`experience_tensors`
materialises the dataset once and keeps the result on the experience.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, Union

import torch
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.generic_scenario import CLScenario
from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
from avalanche.benchmarks.scenarios.task_aware import with_task_labels
from avalanche.benchmarks.utils.classification_dataset import (
    TaskAwareSupervisedClassificationDataset,
)
from avalanche.benchmarks.utils.data_attribute import DataAttribute, TaskLabels
from avalanche.benchmarks.utils.transform_groups import TransformGroups
from torch.utils.data import DataLoader, Dataset

TENSORS_ATTR = "tensors"


@dataclass
class ExperienceTensors:
    """An experience's inputs ``x``, integer targets ``y`` and task labels ``t``."""

    x: torch.Tensor
    y: torch.Tensor
    t: torch.Tensor
    _moved: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.y = torch.as_tensor(self.y, dtype=torch.long)
        self.t = torch.as_tensor(self.t, dtype=torch.long)
        if self.t.dim() == 0:
            self.t = self.t.expand(len(self.y)).clone()
        if not (len(self.x) == len(self.y) == len(self.t)):
            raise ValueError(
                f"x, y and t must have the same length, got {len(self.x)}, "
                f"{len(self.y)}, {len(self.t)}"
            )

    def __len__(self) -> int:
        return len(self.y)

    @property
    def device(self) -> torch.device:
        """Where the tensors live."""
        return self.x.device

    def to(self, device: Union[str, torch.device]) -> ExperienceTensors:
        """The same data on ``device`` (moved once, then cached)."""
        device = torch.device(device)
        if self.device == device:
            return self
        key = str(device)
        if key not in self._moved:
            self._moved[key] = self._moved_to(device)
        return self._moved[key]

    def _moved_to(self, device: torch.device) -> ExperienceTensors:
        return ExperienceTensors(self.x.to(device), self.y.to(device), self.t.to(device))

    def samples(self) -> Dataset:
        """``(x[i], int(y[i]))`` samples for Avalanche's per-sample path."""
        return _TensorSamples(self.x, self.y)

    def subset(self, idx: torch.Tensor) -> ExperienceTensors:
        """Rows ``idx`` (a LongTensor or slice) of every tensor."""
        return ExperienceTensors(self.x[idx], self.y[idx], self.t[idx])

    @staticmethod
    def cat(parts: Sequence[ExperienceTensors]) -> ExperienceTensors:
        """Concatenate experiences' tensors in order."""
        return ExperienceTensors(
            torch.cat([p.x for p in parts]),
            torch.cat([p.y for p in parts]),
            torch.cat([p.t for p in parts]),
        )


class _TensorSamples(Dataset):
    """``(x[i], int(y[i]))`` samples for Avalanche's per-sample path; with ``rows``,
    ``(x[rows[i]], int(y[i]))`` (a sample of a shared pool)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, rows: Optional[torch.Tensor] = None):
        self.x, self.y, self.rows = x, y, rows

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        x = self.x[i] if self.rows is None else self.x[self.rows[i]]
        return x, int(self.y[i])


def tensor_dataset(
    data: ExperienceTensors,
    train_transform: Optional[Callable] = None,
    eval_transform: Optional[Callable] = None,
) -> TaskAwareSupervisedClassificationDataset:
    """An Avalanche classification dataset (targets and task labels) over tensors.

    The optional per-sample transforms act on the stock (per-sample) path only;
    the fast path uses ``experience.train_batch_transform`` instead.
    """
    groups = TransformGroups({"train": train_transform, "eval": eval_transform})
    return TaskAwareSupervisedClassificationDataset(
        [data.samples()],
        data_attributes=[DataAttribute(data.y, "targets"), TaskLabels(data.t)],
        transform_groups=groups,
    )


def tensor_benchmark(
    train: Sequence[ExperienceTensors],
    test: Sequence[ExperienceTensors],
    train_transform: Optional[Callable] = None,
    eval_transform: Optional[Callable] = None,
    train_batch_transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
) -> CLScenario:
    """An Avalanche benchmark with one experience per tensor set.

    Experiences carry ``classes_in_this_experience`` (and the rest of Avalanche's
    classes timeline), ``task_label(s)``, and their tensors in ``.tensors``.
    ``train_batch_transform`` (e.g. batch augmentation) is set on train
    experiences for the fast path.
    """
    if len(train) < 1:
        raise ValueError("a benchmark needs at least one training experience")
    bm = benchmark_from_datasets(
        train=[tensor_dataset(d, train_transform, eval_transform).train() for d in train],
        test=[tensor_dataset(d, train_transform, eval_transform).eval() for d in test],
    )
    bm = with_task_labels(with_classes_timeline(bm))
    for exp, d in zip(bm.train_stream, train):
        setattr(exp, TENSORS_ATTR, d)
        exp.train_batch_transform = train_batch_transform
    for exp, d in zip(bm.test_stream, test):
        setattr(exp, TENSORS_ATTR, d)
    return bm


def experience_tensors(experience) -> ExperienceTensors:
    """The experience's data as tensors: ``experience.tensors`` when present,
    else its dataset materialised once (eval transforms) and kept on it."""
    data = getattr(experience, TENSORS_ATTR, None)
    if isinstance(data, ExperienceTensors):
        return data
    ds = experience.dataset.eval()
    if len(ds) == 0:
        raise ValueError("cannot serve an empty experience")
    warnings.warn(
        "materialising an experience without in-memory tensors (once per experience); "
        "random per-sample transforms are not applied on the fast path",
        stacklevel=2,
    )
    xs, ys, ts = [], [], []
    for batch in DataLoader(ds, batch_size=1024, shuffle=False):
        xs.append(batch[0])
        ys.append(batch[1])
        ts.append(batch[-1] if len(batch) > 2 else torch.zeros_like(batch[1]))
    data = ExperienceTensors(torch.cat(xs), torch.cat(ys), torch.cat(ts))
    try:
        setattr(experience, TENSORS_ATTR, data)
    except AttributeError:
        pass
    return data
