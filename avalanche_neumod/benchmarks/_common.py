"""Shared pieces of the stream generators: seeding, normalisation, checks, augmentation."""

from __future__ import annotations

import zlib
from typing import Any, Optional, Sequence

import torch

from .sampled import assemble
from .tensor_data import ExperienceTensors

# Per-channel statistics of the training sets (inputs are standardised with them).
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
TINY_MEAN, TINY_STD = (0.4802, 0.4481, 0.3975), (0.2770, 0.2691, 0.2821)

SCENARIOS = ("class", "task")


def rng(seed: int, purpose: str) -> torch.Generator:
    """A CPU generator for one purpose of one seed (independent streams per purpose)."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + zlib.crc32(purpose.encode()))


def normalise(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 images ``[N, H, W]`` or ``[N, C, H, W]`` -> float32 ``[N, C, H, W]``,
    ``(x / 255 - mean) / std`` per channel."""
    x = x.float().div_(255.0)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return x.sub_(m).div_(s)


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_choice(name: str, value: Any, valid: Sequence[str]) -> str:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(map(repr, valid))}")
    return value


def subset(n_total: int, size: Optional[int], gen: torch.Generator, name: str) -> torch.Tensor:
    """``size`` distinct indices of ``range(n_total)`` drawn with ``gen`` (None: all, in order)."""
    if size is None:
        return torch.arange(n_total)
    check_int(name, size)
    if size > n_total:
        raise ValueError(f"{name}={size} is larger than the dataset ({n_total} items)")
    return torch.randperm(n_total, generator=gen)[:size]


class RandomCropFlip:
    """Random crop with zero padding (in pixel space) and horizontal flip.

    Works on one image ``[C, H, W]`` (the per-sample transform of the stock path)
    or a batch ``[N, C, H, W]`` (the fast path's batch transform; each sample gets
    its own crop and flip, in one gather). Inputs are normalised, so the padding
    value per channel is ``(0 - mean) / std``: black, as when padding raw images.
    Uses ``generator`` if given, else torch's global RNG (like torchvision).
    """

    def __init__(
        self,
        padding: int = 4,
        flip: bool = True,
        mean: Sequence[float] = (0.0,),
        std: Sequence[float] = (1.0,),
        generator: Optional[torch.Generator] = None,
    ):
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        self.padding = padding
        self.flip = flip
        self.fill = [-m / s for m, s in zip(mean, std)]
        self.generator = generator

    def __repr__(self) -> str:
        return f"RandomCropFlip(padding={self.padding}, flip={self.flip})"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        single = x.dim() == 3
        xb = x.unsqueeze(0) if single else x
        n, c, h, w = xb.shape
        p = self.padding
        fill = torch.tensor(self.fill, dtype=xb.dtype, device=xb.device)
        fill = fill.expand(c) if fill.numel() == 1 else fill
        padded = fill.view(1, c, 1, 1).expand(n, c, h + 2 * p, w + 2 * p).clone()
        padded[:, :, p : p + h, p : p + w] = xb
        g = self.generator
        oy = torch.randint(0, 2 * p + 1, (n,), generator=g)
        ox = torch.randint(0, 2 * p + 1, (n,), generator=g)
        cols = torch.arange(w).expand(n, w)
        if self.flip:
            flipped = torch.rand(n, generator=g) < 0.5
            cols = torch.where(flipped[:, None], w - 1 - cols, cols)
        rows = (oy[:, None] + torch.arange(h)).to(xb.device)
        cols = (ox[:, None] + cols).to(xb.device)
        out = padded[
            torch.arange(n, device=xb.device)[:, None, None, None],
            torch.arange(c, device=xb.device)[None, :, None, None],
            rows[:, None, :, None],
            cols[:, None, None, :],
        ]
        return out[0] if single else out


def augmentation(
    augment: bool, mean: Sequence[float], std: Sequence[float], padding: int = 4
) -> dict[str, Any]:
    """``tensor_benchmark`` keyword arguments for crop+flip augmentation (or none)."""
    if not augment:
        return {}
    t = RandomCropFlip(padding=padding, mean=mean, std=std)
    return {"train_transform": t, "train_batch_transform": t}


def build(
    train: Sequence[ExperienceTensors],
    test: Sequence[ExperienceTensors],
    info: dict[str, Any],
    transforms: Optional[dict[str, Any]] = None,
    **attrs: Any,
):
    """``tensor_benchmark`` plus ``bm.neumod_info`` (metadata), ``bm.neumod_transforms``
    (the transforms, so wrappers can rebuild) and any extra attributes. Experiences
    get ``task_id`` (their index) and ``recurring`` (False)."""
    transforms = dict(transforms or {})
    bm = assemble(train, test, **transforms)
    info = dict(info)
    info.setdefault("n_experiences", len(train))
    info.setdefault("augment", bool(transforms))
    bm.neumod_info = info
    bm.neumod_transforms = transforms
    for k, v in attrs.items():
        setattr(bm, k, v)
    for i, exp in enumerate(bm.train_stream):
        exp.task_id = i
        exp.recurring = False
    for i, exp in enumerate(bm.test_stream):
        exp.task_id = i
        exp.recurring = False
    return bm


def task_tensor(n: int, k: int, task_labels: bool) -> torch.Tensor:
    """Task labels for ``n`` samples of experience ``k`` (``k`` if task_labels else 0)."""
    return torch.full((n,), k if task_labels else 0, dtype=torch.long)
