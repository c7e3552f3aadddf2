"""A training monitor: divergence detection, the per-step training curve, progress.

:class:`TrainMonitor` is a ``SupervisedPlugin`` added to every cell's strategy.
After each training iteration it reads the minibatch loss: a non-finite loss
(NaN or inf) raises :class:`Diverged`, which stops the cell (recorded as
"diverged", the suite goes on). It also averages the minibatch loss and
accuracy over windows of ``log_every`` iterations (the "accuracy at each
training step" curve of NeuMoSync's Figure 1) and records where each
experience starts, so figures can mark task boundaries.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from avalanche.core import SupervisedPlugin
from tqdm.auto import tqdm

from ..observer import Observer


class Diverged(RuntimeError):
    """Training produced a non-finite loss."""

    def __init__(self, experience: int, iteration: int, loss: float):
        super().__init__(
            f"non-finite loss {loss} at iteration {iteration} (experience {experience})"
        )
        self.experience = experience
        self.iteration = iteration
        self.loss = loss


class TrainMonitor(Observer, SupervisedPlugin):
    """Stop on a non-finite loss; record windowed training loss/accuracy and boundaries.

    An :class:`~avalanche_neumod.observer.Observer`: forks of the strategy (probes)
    leave it out, so a probe neither counts iterations nor stops on its own loss.
    """

    def __init__(self, log_every: int = 10, pbar=None):
        super().__init__()
        if log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {log_every}")
        self.log_every = log_every
        self.pbar = pbar
        self.iteration = 0  # training iterations done (optimizer steps)
        self.experience = -1
        self.boundaries: list[int] = []  # iteration at which each experience starts
        self.curve_iter: list[int] = []
        self.curve_loss: list[float] = []
        self.curve_acc: list[float] = []
        self._loss_sum = 0.0
        self._correct = 0
        self._seen = 0
        self._n = 0

    def before_training_exp(self, strategy, **kwargs) -> None:
        self._flush()
        self.experience += 1
        self.boundaries.append(self.iteration)

    def after_training_iteration(self, strategy, **kwargs) -> None:
        loss = strategy.loss
        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        self.iteration += 1
        if not math.isfinite(value):
            raise Diverged(self.experience, self.iteration, value)
        self._loss_sum += value
        self._n += 1
        out = getattr(strategy, "mb_output", None)
        y = getattr(strategy, "mb_y", None)
        if isinstance(out, torch.Tensor) and isinstance(y, torch.Tensor) and out.dim() == 2:
            if len(out) == len(y):
                self._correct += int((out.detach().argmax(1) == y).sum())
                self._seen += len(y)
        if self._n >= self.log_every:
            self._flush()
        if self.pbar is not None:
            self.pbar.update(1)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self._flush()

    def _flush(self) -> None:
        if self._n == 0:
            return
        self.curve_iter.append(self.iteration)
        self.curve_loss.append(self._loss_sum / self._n)
        self.curve_acc.append(self._correct / self._seen if self._seen else math.nan)
        self._loss_sum, self._correct, self._seen, self._n = 0.0, 0, 0, 0

    def curves(self) -> dict:
        """The windowed curve (x = iterations done at the window's end) and boundaries."""
        self._flush()
        return {
            "iteration": list(self.curve_iter),
            "loss": list(self.curve_loss),
            "accuracy": list(self.curve_acc),
            "log_every": self.log_every,
            "boundaries": list(self.boundaries),
        }


def attach_pbar(monitor: TrainMonitor, total: Optional[int], desc: str, position: int = 1):
    """A tqdm bar over training iterations for ``monitor`` (closed by the caller)."""

    monitor.pbar = tqdm(total=total, desc=desc, position=position, leave=False, unit="it")
    return monitor.pbar
