"""Avalanche benchmarks built from in-memory tensors, which the fast path can slice.

Every experience made here is an ordinary Avalanche ``DatasetExperience`` (its
``dataset`` works with any strategy and the stock loaders) that also carries its
data as tensors (:class:`ExperienceTensors`, attached with :func:`attach_tensors`,
readable as ``experience.tensors``). The fast path
(``avalanche_neumod.training.fast_data``) reads them instead of fetching samples
one at a time. For experiences made elsewhere, :func:`experience_tensors`
materialises the dataset once and keeps the result on the experience.

The container and its accessors live in :mod:`avalanche_neumod.tensors` (the
package's bottom module); they are re-exported here so existing imports work.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

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

from ..tensors import (
    TENSORS_ATTR,
    ExperienceTensors,
    _TensorSamples,
    attach_tensors,
    attached_tensors,
    experience_tensors,
)


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
    for kind, stream in (("train", train), ("test", test)):
        for i, d in enumerate(stream):
            if len(d.y) == 0:
                raise ValueError(
                    f"{kind} experience {i} is empty (0 samples): every experience needs at "
                    "least one sample"
                )
    bm = benchmark_from_datasets(
        train=[tensor_dataset(d, train_transform, eval_transform).train() for d in train],
        test=[tensor_dataset(d, train_transform, eval_transform).eval() for d in test],
    )
    bm = with_task_labels(with_classes_timeline(bm))
    for exp, d in zip(bm.train_stream, train):
        attach_tensors(exp, d)
        exp.train_batch_transform = train_batch_transform
    for exp, d in zip(bm.test_stream, test):
        attach_tensors(exp, d)
    return bm


__all__ = [
    "TENSORS_ATTR",
    "ExperienceTensors",
    "_TensorSamples",
    "attach_tensors",
    "attached_tensors",
    "experience_tensors",
    "tensor_benchmark",
    "tensor_dataset",
]
