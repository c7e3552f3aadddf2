"""Fast accuracy on fixed test subsets: what the stability-gap metric and the probes evaluate.

Each experience's test data is cut once to a fixed subset (``samples`` rows drawn
with a private generator, so no global random number is consumed), kept as
tensors, and evaluated directly: the seen experiences' subsets are concatenated
once, run through the model in large batches in eval mode under
``torch.no_grad``, and the correct predictions are summed per experience in one
``index_add``. The model's per-module train/eval flags are restored afterwards and
:class:`~avalanche_neumod.models.units.UnitRecorder` hooks are paused, so the
method's own activity statistics never see these extra forwards.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Sequence

import torch
from avalanche.models.utils import avalanche_forward
from torch import nn

from ..argument_rules import check_integer
from ..models.units import recording_paused
from ..tensors import ExperienceTensors, experience_tensors

# forward(model, x, t) -> logits
ForwardFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def default_forward(model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Avalanche's forward: ``model(x, t)`` for multi-task models, else ``model(x)``."""
    return avalanche_forward(model, x, t)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """``model.eval()`` inside, every module's own train flag restored after (modules that
    override ``train()`` see the calls)."""
    modules = list(model.modules())
    modes = [m.training for m in modules]
    model.eval()
    try:
        yield
    finally:
        # parents come before children: a parent's train(mode) resets its children,
        # which are then corrected in turn
        for m, mode in zip(modules, modes):
            if m.training != mode:
                m.train(mode)


def fixed_subset(data: ExperienceTensors, samples: Optional[int], seed: int) -> ExperienceTensors:
    """``samples`` rows of ``data`` drawn without replacement by a private generator
    seeded with ``seed`` (all rows, in order, when ``samples`` is None or >= len)."""
    n = len(data)
    if samples is None or samples >= n:
        return data
    g = torch.Generator().manual_seed(int(seed))
    idx = torch.randperm(n, generator=g)[:samples].sort().values
    return data.subset(idx)


def experience_seed(seed: int, k: int) -> int:
    """The subset seed of experience ``k`` under a metric's ``seed``: ``seed * 1_000_003 + k``."""
    return seed * 1_000_003 + k


def experience_subsets(
    experiences: Sequence, samples: Optional[int], seed: int
) -> dict[int, ExperienceTensors]:
    """Fixed subsets of a test stream's experiences, keyed by position in the stream
    (experience ``k`` uses seed :func:`experience_seed`)."""
    if samples is not None:
        check_integer("the number of evaluation samples", samples, 1)
    out = {}
    for k, exp in enumerate(experiences):
        out[k] = fixed_subset(experience_tensors(exp), samples, experience_seed(seed, k))
    return out


def training_subset(experience, samples: Optional[int], seed: int) -> ExperienceTensors:
    """Fixed ``samples`` rows of a training experience, drawn with
    :func:`experience_seed` of its ``current_experience`` (0 when it has none)."""
    k = int(getattr(experience, "current_experience", 0) or 0)
    return fixed_subset(experience_tensors(experience), samples, experience_seed(seed, k))


class SubsetEvaluator:
    """Accuracy of a model on fixed per-experience subsets, in large batches."""

    def __init__(
        self,
        subsets: dict[int, ExperienceTensors],
        batch_size: int = 1024,
        forward: Optional[ForwardFn] = None,
    ):
        check_integer("batch_size", batch_size, 1)
        self.subsets = subsets
        self.batch_size = batch_size
        self.forward = forward or default_forward
        self._cache: dict = {}

    def _stacked(self, ids: tuple[int, ...], device: torch.device):
        key = (ids, str(device))
        hit = self._cache.get(key)
        if hit is None:
            parts = [self.subsets[i].to(device) for i in ids]
            data = ExperienceTensors.cat(parts) if len(parts) > 1 else parts[0]
            seg = torch.cat(
                [
                    torch.full((len(p),), j, dtype=torch.long, device=device)
                    for j, p in enumerate(parts)
                ]
            )
            sizes = torch.tensor([len(p) for p in parts], dtype=torch.float64)
            hit = (data, seg, sizes)
            self._cache = {key: hit}  # keep only the latest set of experiences
        return hit

    def evaluate(self, model: nn.Module, ids: Sequence[int], device=None) -> dict[int, float]:
        """Accuracy in [0, 1] on each experience in ``ids``."""
        ids = tuple(int(i) for i in ids)
        if not ids:
            return {}
        if device is None:
            p = next(model.parameters(), None)
            device = p.device if p is not None else torch.device("cpu")
        data, seg, sizes = self._stacked(ids, torch.device(device))
        correct = torch.zeros(len(ids), dtype=torch.float64, device=data.y.device)
        with eval_mode(model), torch.no_grad(), recording_paused():
            n, bs = len(data), self.batch_size
            for i in range(0, n, bs):
                logits = self.forward(model, data.x[i : i + bs], data.t[i : i + bs])
                hit = (logits.argmax(dim=1) == data.y[i : i + bs]).to(torch.float64)
                correct.index_add_(0, seg[i : i + bs], hit)
        acc = (correct.cpu() / sizes).tolist()
        return dict(zip(ids, acc))
