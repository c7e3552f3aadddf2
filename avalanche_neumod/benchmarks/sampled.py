"""Experiences that index a shared pool of tensors (with-replacement samples, joint unions).

NGM streams train each experience on ``iterations * batch_size`` samples drawn
with replacement, and joint variants train experience k on the union of
experiences 0..k. Stored as copies, both would multiply memory (a CIFAR
experience of 400 x 256 samples is 1.3 GB as float32). :class:`SampledTensors`
stores only row indices into a shared pool and gathers ``x`` when read (one
experience at a time: the last one gathered is kept, so the fast path gathers
once per experience), and
:func:`~avalanche_neumod.benchmarks.tensor_data.tensor_benchmark` builds the
Avalanche datasets over the pool by index (:meth:`SampledTensors.samples`). To
every reader it is an ordinary :class:`ExperienceTensors`.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch.utils.data import Dataset

from .tensor_data import ExperienceTensors, _TensorSamples

_LAST: dict[str, Any] = {}


class SampledTensors(ExperienceTensors):
    """Rows ``index`` of ``pool``: ``y`` and ``t`` stored, ``x`` gathered on each read."""

    def __init__(self, pool: ExperienceTensors, index: torch.Tensor, *, check: bool = True):
        """``check=False``: ``index`` is already known to fit ``pool`` (a moved copy; the
        check would read the index back from the device)."""
        index = torch.as_tensor(index, dtype=torch.long)
        if index.dim() != 1:
            raise ValueError("index must be one-dimensional")
        if check and len(index) and (int(index.min()) < 0 or int(index.max()) >= len(pool)):
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

    @property
    def device(self) -> torch.device:
        return self.pool.x.device

    def _moved_to(self, device: torch.device) -> ExperienceTensors:
        return SampledTensors(self.pool.to(device), self.index.to(device), check=False)

    def samples(self) -> Dataset:
        return _TensorSamples(self.pool.x, self.y, rows=self.index)

    def subset(self, idx: torch.Tensor) -> ExperienceTensors:
        return SampledTensors(self.pool, self.index[idx])
