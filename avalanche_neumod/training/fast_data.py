"""The fast training path: minibatches sliced from in-memory tensors (DESIGN 10, P1).

Avalanche's stock loaders fetch and collate one sample at a time, which costs
more than a small model's forward and backward pass. When an experience's data
is already a set of tensors, :class:`TensorBatchLoader` serves whole minibatches
by indexing them, with the same ``[x, y, task_label]`` minibatch contract, so
``mb_x``, ``mb_y`` and ``mb_task_id`` work unchanged.

:class:`FastDataPlugin` swaps it in for any Avalanche strategy, for training
and evaluation, where the strategy uses the default loader on the experience's
own data; where another plugin has put its own loader (e.g. Avalanche's
``ReplayPlugin``), or the adapted dataset is not the experience's, it leaves
the stock loader in place.
"""

from __future__ import annotations

import warnings
from typing import Callable, Iterator, Optional

import torch
from avalanche.benchmarks.utils.data_loader import TaskBalancedDataLoader
from avalanche.core import SupervisedPlugin
from torch.utils.data import DataLoader

from ..benchmarks.tensor_data import ExperienceTensors, experience_tensors

BatchTransform = Callable[[torch.Tensor], torch.Tensor]


class TensorBatchLoader:
    """Iterate ``[x, y, t]`` minibatches of in-memory tensors.

    Each epoch visits every sample once (``shuffle`` draws one permutation per
    epoch from ``generator``, else from torch's global RNG, as ``DataLoader``
    does); the last batch is smaller unless ``drop_last``. ``transform`` is
    applied to each ``x`` batch (e.g. batch-level augmentation).
    """

    def __init__(
        self,
        data: ExperienceTensors,
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: Optional[torch.Generator] = None,
        transform: Optional[BatchTransform] = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator
        self.transform = transform

    def __len__(self) -> int:
        n, bs = len(self.data.y), self.batch_size
        return n // bs if self.drop_last else -(-n // bs)

    def __iter__(self) -> Iterator[list[torch.Tensor]]:
        x, y, t = self.data.x, self.data.y, self.data.t
        n, bs = len(y), self.batch_size
        stop = n - n % bs if self.drop_last else n
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator, device="cpu").to(y.device)
            for i in range(0, stop, bs):
                idx = order[i : i + bs]
                xb = x[idx]
                yield [self.transform(xb) if self.transform else xb, y[idx], t[idx]]
        else:
            for i in range(0, stop, bs):
                xb = x[i : i + bs]
                yield [self.transform(xb) if self.transform else xb, y[i : i + bs], t[i : i + bs]]


_STOCK_LOADERS = (DataLoader, TaskBalancedDataLoader)


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

    def _usable(self, strategy) -> bool:
        if type(strategy.dataloader) not in _STOCK_LOADERS:
            return False  # another plugin owns the loader (e.g. replay)
        exp = strategy.experience
        ds = strategy.adapted_dataset
        if ds is None or len(ds) != len(exp.dataset):
            if not self._warned:
                warnings.warn(
                    "FastDataPlugin: the adapted dataset differs from the experience's "
                    "data; using the stock loader for it",
                    stacklevel=2,
                )
                self._warned = True
            return False
        return True

    def before_training_exp(self, strategy, **kwargs) -> None:
        if not self.train_enabled or not self._usable(strategy):
            return
        data = experience_tensors(strategy.experience).to(strategy.device)
        strategy.dataloader = TensorBatchLoader(
            data,
            strategy.train_mb_size,
            shuffle=True,
            generator=self.generator,
            transform=getattr(strategy.experience, "train_batch_transform", None),
        )

    def before_eval_exp(self, strategy, **kwargs) -> None:
        if not self.eval_enabled or not self._usable(strategy):
            return
        data = experience_tensors(strategy.experience).to(strategy.device)
        strategy.dataloader = TensorBatchLoader(data, strategy.eval_mb_size, shuffle=False)
