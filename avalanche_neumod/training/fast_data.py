"""The fast training path: minibatches sliced from in-memory tensors.

Its cost bar is P1 (docs/suites.md#performance-bars).

Avalanche's stock loaders fetch and collate one sample at a time, which costs
more than a small model's forward and backward pass. When an experience's data
is already a set of tensors, :class:`TensorBatchLoader` serves whole minibatches
by indexing them, with the same ``[x, y, task_label]`` minibatch contract, so
``mb_x``, ``mb_y`` and ``mb_task_id`` work unchanged.

:class:`FastDataPlugin` swaps it in for any Avalanche strategy, for training
and evaluation, where the strategy uses the default loader on the experience's
own data; where another plugin has put its own loader (e.g. Avalanche's
``ReplayPlugin``), or the adapted dataset is not the experience's, it leaves
the stock loader in place. The evaluation loader consumes one draw from torch's
global RNG per experience, as iterating the stock loader does (PyTorch's
``DataLoader`` draws its workers' base seed), so a seeded run follows the same
random stream whichever loader serves the evaluation.
"""

from __future__ import annotations

import warnings
from typing import Callable, Iterator, Optional

import torch
from avalanche.benchmarks.utils.data_loader import (
    SingleDatasetDataLoader,
    TaskBalancedDataLoader,
)
from avalanche.core import SupervisedPlugin
from torch.utils.data import DataLoader

from ..argument_rules import check_integer
from ..tensors import ExperienceTensors, experience_tensors

BatchTransform = Callable[[torch.Tensor], torch.Tensor]


class TensorBatchLoader:
    """Iterate ``[x, y, t]`` minibatches of in-memory tensors.

    Each epoch visits every sample once (``shuffle`` draws one permutation per
    epoch from ``generator``, else from torch's global RNG, as ``DataLoader``
    does); the last batch is smaller unless ``drop_last``. ``transform`` is
    applied to each ``x`` batch (e.g. batch-level augmentation). ``seed_draw``
    consumes one int64 from torch's global RNG at the start of each epoch, as a
    ``DataLoader``'s iterator does for its workers' base seed (the draw is
    discarded: it only keeps the global random stream where the stock loader
    leaves it).
    """

    def __init__(
        self,
        data: ExperienceTensors,
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: Optional[torch.Generator] = None,
        transform: Optional[BatchTransform] = None,
        seed_draw: bool = False,
    ):
        batch_size = check_integer("batch_size", batch_size, 1)
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator
        self.transform = transform
        self.seed_draw = seed_draw

    def __len__(self) -> int:
        n, bs = len(self.data.y), self.batch_size
        return n // bs if self.drop_last else -(-n // bs)

    def __iter__(self) -> Iterator[list[torch.Tensor]]:
        if self.seed_draw:
            torch.empty((), dtype=torch.int64).random_()
        x, y, t = self.data.x, self.data.y, self.data.t
        n, bs = len(y), self.batch_size
        stop = n - n % bs if self.drop_last else n
        tf = self.transform
        if self.shuffle:
            # one task label for the whole experience (the usual case): its rows are
            # all equal, so a slice serves them without a gather per batch
            same_task = n > 0 and bool((t == t[0]).all())
            order = torch.randperm(n, generator=self.generator, device="cpu").to(y.device)
            for i in range(0, stop, bs):
                idx = order[i : i + bs]
                xb = x[idx]
                tb = t[: len(idx)] if same_task else t[idx]
                yield [tf(xb) if tf else xb, y[idx], tb]
        else:
            for i in range(0, stop, bs):
                xb = x[i : i + bs]
                yield [tf(xb) if tf else xb, y[i : i + bs], t[i : i + bs]]


# the loaders Avalanche's SupervisedTemplate builds (training, evaluation); exact types only
_STOCK_LOADERS = (DataLoader, TaskBalancedDataLoader, SingleDatasetDataLoader)


class FastDataPlugin(SupervisedPlugin):
    """Serve training and evaluation minibatches by slicing in-memory tensors.

    Add it to any Avalanche strategy (``Naive(..., plugins=[FastDataPlugin()])``);
    this library's strategies include it by default. ``seed`` gives the shuffling
    its own generator; ``None`` draws from torch's global RNG like ``DataLoader``.
    """

    def __init__(self, seed: Optional[int] = None, train: bool = True, eval: bool = True):
        super().__init__()
        self.generator = None
        if seed is not None:
            self.generator = torch.Generator().manual_seed(seed)
        self.train_enabled = train
        self.eval_enabled = eval
        self._warned = False

    def _serves(self, strategy) -> bool:
        """Whether the adapted dataset is the experience's own data (so its tensors serve)."""
        if getattr(strategy, "adaptation_deferred", False):
            return True  # FastTemplate: the adaptation is the experience's own data, not built
        ds = strategy.adapted_dataset
        if ds is None or len(ds) != len(strategy.experience.dataset):
            if not self._warned:
                warnings.warn(
                    "FastDataPlugin: the adapted dataset differs from the experience's "
                    "data; using the stock loader for it",
                    stacklevel=3,
                )
                self._warned = True
            return False
        return True

    def train_loader(self, strategy) -> Optional[TensorBatchLoader]:
        """The training loader for ``strategy``'s current experience, or ``None`` when
        this plugin does not serve it (disabled, or the adapted data differ)."""
        if not self.train_enabled or not self._serves(strategy):
            return None
        data = experience_tensors(strategy.experience).to(strategy.device)
        return TensorBatchLoader(
            data,
            strategy.train_mb_size,
            shuffle=True,
            generator=self.generator,
            transform=getattr(strategy.experience, "train_batch_transform", None),
        )

    def eval_loader(self, strategy) -> Optional[TensorBatchLoader]:
        """The evaluation loader for the current experience, or ``None`` (see
        :meth:`train_loader`). In order, with one global RNG draw per experience
        like the stock evaluation loader."""
        if not self.eval_enabled or not self._serves(strategy):
            return None
        data = experience_tensors(strategy.experience).to(strategy.device)
        return TensorBatchLoader(data, strategy.eval_mb_size, shuffle=False, seed_draw=True)

    # In any Avalanche strategy: replace the stock loader the template has just built,
    # unless another plugin owns the loader (e.g. replay) or ours is already in place.
    def before_training_exp(self, strategy, **kwargs) -> None:
        if type(strategy.dataloader) in _STOCK_LOADERS:
            loader = self.train_loader(strategy)
            if loader is not None:
                strategy.dataloader = loader

    def before_eval_exp(self, strategy, **kwargs) -> None:
        if type(strategy.dataloader) in _STOCK_LOADERS:
            loader = self.eval_loader(strategy)
            if loader is not None:
                strategy.dataloader = loader
