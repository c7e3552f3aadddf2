"""Shared pieces of the stream generators: seeding, normalisation, checks, the
construction steps several streams use (subsets, permutations, class groups),
augmentation and the final assembly with its metadata."""

from __future__ import annotations

import math
import zlib
from typing import Any, NamedTuple, Optional, Sequence

import torch

from .tensor_data import ExperienceTensors, tensor_benchmark


class Stats(NamedTuple):
    """Per-channel mean and std of a training set (inputs are standardised with them)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


MNIST = Stats((0.1307,), (0.3081,))
CIFAR10 = Stats((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR100 = Stats((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
TINY_IMAGENET = Stats((0.4802, 0.4481, 0.3975), (0.2770, 0.2691, 0.2821))

SCENARIOS = ("class", "task")

# How a stream's average accuracy is read from the accuracy matrix R[i][j] (accuracy
# on test experience j after training experience i, T experiences):
# "final" averages the last row, mean_j R[T-1][j] (what is still known at the end);
# "end_of_task" averages the diagonal, mean_k R[k][k] (each task right after its
# training: memorisation streams, where old labels are meant to be overwritten).
FINAL, END_OF_TASK = "final", "end_of_task"
ACCURACY_KINDS = (FINAL, END_OF_TASK)


def rng(seed: int, purpose: str) -> torch.Generator:
    """A CPU generator for one purpose of one seed (independent streams per purpose)."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + zlib.crc32(purpose.encode()))


def normalise(x: torch.Tensor, stats: Stats) -> torch.Tensor:
    """uint8 images ``[N, H, W]`` or ``[N, C, H, W]`` -> float32 ``[N, C, H, W]``,
    ``(x / 255 - mean) / std`` per channel."""
    x = x.float().div_(255.0)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    m = torch.tensor(stats.mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(stats.std, dtype=torch.float32).view(1, -1, 1, 1)
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


def train_test_subsets(
    d: Any, train_size: Optional[int], test_size: Optional[int], seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded subset indices of ``d``'s train and test splits (``None``: all, in order)."""
    tr = subset(len(d.y_train), train_size, rng(seed, "train-subset"), "train_size")
    te = subset(len(d.y_test), test_size, rng(seed, "test-subset"), "test_size")
    return tr, te


def task_tensor(n: int, k: int, task_labels: bool) -> torch.Tensor:
    """Task labels for ``n`` samples of experience ``k`` (``k`` if task_labels else 0)."""
    return torch.full((n,), k if task_labels else 0, dtype=torch.long)


def distinct_permutations(n_tasks: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """``[n_tasks, n]``: row 0 the identity, later rows random permutations of
    ``range(n)`` drawn with ``gen``, a repeat redrawn (so every task differs).
    ValueError if there are fewer than ``n_tasks`` distinct permutations."""
    if n_tasks > math.factorial(n):
        raise ValueError(
            f"n_experiences={n_tasks} exceeds the {math.factorial(n)} distinct "
            f"permutations of {n} items"
        )
    perms = [torch.arange(n)]
    while len(perms) < n_tasks:
        p = torch.randperm(n, generator=gen)
        if not any(torch.equal(p, q) for q in perms):
            perms.append(p)
    return torch.stack(perms)


def permuted_pixels(
    x: torch.Tensor, y: torch.Tensor, perms: torch.Tensor, task_labels: bool
) -> list[ExperienceTensors]:
    """Experience k: images ``x`` (``[N, C, H, W]``) with pixel i showing original
    pixel ``perms[k][i]`` (``x_k[:, i] = x[:, perms[k][i]]`` over flattened pixels)."""
    flat = x.flatten(1)
    return [
        ExperienceTensors(flat[:, p].reshape(x.shape), y, task_tensor(len(y), k, task_labels))
        for k, p in enumerate(perms)
    ]


def class_group_experiences(
    x: torch.Tensor,
    y: torch.Tensor,
    groups: Sequence[torch.Tensor],
    stats: Stats,
    task_labels: bool,
    targets: Optional[torch.Tensor] = None,
    ids_within_group: bool = False,
) -> list[ExperienceTensors]:
    """Experience k: the images whose class ``y`` is in ``groups[k]``, standardised.

    Targets are ``targets`` (default ``y``) at those images, or with
    ``ids_within_group`` each class's position in its group (0..len-1)."""
    out = []
    for k, g in enumerate(groups):
        idx = torch.nonzero(torch.isin(y, g)).flatten()
        yk = (y if targets is None else targets)[idx]
        if ids_within_group:
            yk = (yk[:, None] == g[None]).float().argmax(1)
        out.append(
            ExperienceTensors(normalise(x[idx], stats), yk, task_tensor(len(idx), k, task_labels))
        )
    return out


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


def augmentation(augment: bool, stats: Stats, padding: int = 4) -> dict[str, Any]:
    """``tensor_benchmark`` keyword arguments for crop+flip augmentation (or none)."""
    if not augment:
        return {}
    t = RandomCropFlip(padding=padding, mean=stats.mean, std=stats.std)
    return {"train_transform": t, "train_batch_transform": t}


def stream_info(
    name: str,
    input_shape: Sequence[int],
    num_classes: int,
    scenario: str,
    accuracy: str,
    accuracy_kind: str = FINAL,
    **extra: Any,
) -> dict[str, Any]:
    """The metadata every stream records in ``bm.neumod_info`` (``task_labels`` is
    ``scenario == "task"``; ``accuracy_kind`` one of :data:`ACCURACY_KINDS`)."""
    check_choice("accuracy_kind", accuracy_kind, ACCURACY_KINDS)
    return {
        "name": name,
        "input_shape": tuple(input_shape),
        "num_classes": num_classes,
        "scenario": scenario,
        "task_labels": scenario == "task",
        "accuracy": accuracy,
        "accuracy_kind": accuracy_kind,
        **extra,
    }


def label_scenario(task_labels: bool) -> str:
    """The scenario of a stream whose label space stays: "task" with task labels, else "domain"."""
    return "task" if task_labels else "domain"


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
    bm = tensor_benchmark(train, test, **transforms)
    info = dict(info)
    info.setdefault("n_experiences", len(train))
    info.setdefault("augment", bool(transforms))
    bm.neumod_info = info
    bm.neumod_transforms = transforms
    for k, v in attrs.items():
        setattr(bm, k, v)
    for stream in (bm.train_stream, bm.test_stream):
        for i, exp in enumerate(stream):
            exp.task_id = i
            exp.recurring = False
    return bm
