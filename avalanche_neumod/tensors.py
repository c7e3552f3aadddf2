"""An experience's data as in-memory tensors, and how they travel with the experience.

The bottom of the package: it imports nothing of ours, so every part
(``benchmarks``, ``training``, ``evaluation``, ``experiment``) may import it.

The contract: an experience's tensors are an :class:`ExperienceTensors`,
attached with :func:`attach_tensors` and read with :func:`attached_tensors`
(``None`` when absent) or :func:`experience_tensors` (materialises the
experience's dataset once when absent). They are stored in the experience's
``tensors`` attribute (:data:`TENSORS_ATTR`), which code may read
(``exp.tensors``) but should not set directly.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import torch
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


def attach_tensors(experience, data: ExperienceTensors) -> None:
    """Attach ``data`` to ``experience`` as its tensors (read back with :func:`attached_tensors`).

    Raises ``TypeError`` when ``data`` is not an :class:`ExperienceTensors`.
    """
    if not isinstance(data, ExperienceTensors):
        raise TypeError(f"expected ExperienceTensors, got {type(data).__name__}")
    setattr(experience, TENSORS_ATTR, data)


def attached_tensors(experience) -> Optional[ExperienceTensors]:
    """The tensors attached to ``experience``, or None (nothing is materialised)."""
    data = getattr(experience, TENSORS_ATTR, None)
    return data if isinstance(data, ExperienceTensors) else None


def experience_tensors(experience) -> ExperienceTensors:
    """The experience's data as tensors: its attached tensors when present, else its
    dataset materialised once (eval transforms) and attached to it when it allows."""
    data = attached_tensors(experience)
    if data is not None:
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
        attach_tensors(experience, data)
    except AttributeError:
        pass
    return data


__all__ = [
    "TENSORS_ATTR",
    "ExperienceTensors",
    "attach_tensors",
    "attached_tensors",
    "experience_tensors",
]
