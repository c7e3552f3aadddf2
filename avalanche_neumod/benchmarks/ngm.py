"""The NGM-SGD streams: fixed iterations per experience, joint by default.

Split-MNIST, Rotated-MNIST, Permuted-MNIST (3 tasks), Split-CIFAR-10 and
Domain-CIFAR-100, as in the NGM-SGD study of the stability gap in joint training.

Fixed iterations, realised in the data: experience k's training set is a
with-replacement sample of ``iterations * batch_size`` items (seeded) from its
pool (``joint=True``: the union of the pools of experiences 0..k). One epoch with
``train_mb_size=batch_size`` then makes exactly ``iterations`` updates, with any
Avalanche strategy. The samples index one shared pool
(:class:`~avalanche_neumod.benchmarks.sampled.SampledTensors`), so memory stays
that of the pool. ``bm.neumod_info`` and every train experience record
``iterations`` and ``batch_size``. Tests are the full test sets of each experience.
Inputs are standardised (MNIST: 0.1307 / 0.3081, the authors' values).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torchvision.transforms.functional import rotate

from ..argument_rules import checked, integer
from ._common import (
    CIFAR10,
    CIFAR100,
    MNIST,
    SCENARIOS,
    Stats,
    augmentation,
    build,
    check_choice,
    class_group_experiences,
    distinct_permutations,
    label_scenario,
    normalise,
    permuted_pixels,
    rng,
    stream_info,
    task_tensor,
    train_test_subsets,
)
from .datasets import PathLike, load_cifar10, load_cifar100, load_mnist
from .sampled import SampledTensors
from .tensor_data import ExperienceTensors

JOINT_NOTE = "; joint: experience k trains on the union of experiences 0..k"
#: the schedule arguments of every NGM stream (applied by ``checked``)
SCHEDULE = dict(iterations=integer(1), batch_size=integer(1))


@checked(**SCHEDULE)
def sample_experiences(
    pool: ExperienceTensors,
    offsets: Sequence[int],
    iterations: int,
    batch_size: int,
    joint: bool,
    seed: int,
) -> list[SampledTensors]:
    """Experience k: ``iterations * batch_size`` rows drawn uniformly with replacement
    from pool rows ``offsets[k]:offsets[k+1]`` (joint: ``0:offsets[k+1]``)."""
    n = iterations * batch_size
    out = []
    for k in range(len(offsets) - 1):
        lo = 0 if joint else offsets[k]
        hi = offsets[k + 1]
        if hi <= lo:
            raise ValueError(f"experience {k} has no training data")
        g = rng(seed, f"ngm-sample-{k}-{'joint' if joint else 'single'}")
        out.append(SampledTensors(pool, lo + torch.randint(hi - lo, (n,), generator=g)))
    return out


def _ngm_stream(
    pools: list[ExperienceTensors],
    tests: list[ExperienceTensors],
    iterations: int,
    batch_size: int,
    joint: bool,
    seed: int,
    info: dict[str, Any],
    transforms: Optional[dict[str, Any]] = None,
    **attrs: Any,
):
    pool = ExperienceTensors.cat(pools)
    sizes = [len(p) for p in pools]
    offsets = [0]
    for s in sizes:
        offsets.append(offsets[-1] + s)
    train = sample_experiences(pool, offsets, iterations, batch_size, joint, seed)
    info = dict(info)
    info.update(
        iterations=iterations,
        batch_size=batch_size,
        train_mb_size=batch_size,
        train_epochs=1,
        joint=joint,
        seed=seed,
        pool_sizes=sizes,
    )
    if joint:
        info["accuracy"] += JOINT_NOTE
    bm = build(
        train, tests, info, transforms, neumod_pool=pool, neumod_pool_offsets=offsets, **attrs
    )
    for exp in bm.train_stream:
        exp.iterations = iterations
        exp.batch_size = batch_size
    return bm


def _mnist(root, download, train_size, test_size, seed):
    d = load_mnist(root, download=download)
    tr, te = train_test_subsets(d, train_size, test_size, seed)
    return d.x_train[tr], d.y_train[tr], d.x_test[te], d.y_test[te]


def _pairs_split(
    x_tr: torch.Tensor,
    y_tr: torch.Tensor,
    x_te: torch.Tensor,
    y_te: torch.Tensor,
    stats: Stats,
    scenario: str,
) -> tuple[list[ExperienceTensors], list[ExperienceTensors], torch.Tensor]:
    """Five experiences of class pairs (0,1), (2,3), ..., (8,9); original targets."""
    check_choice("scenario", scenario, SCENARIOS)
    groups = torch.arange(10).view(5, 2)
    task_labels = scenario == "task"
    pools = class_group_experiences(x_tr, y_tr, groups, stats, task_labels)
    tests = class_group_experiences(x_te, y_te, groups, stats, task_labels)
    return pools, tests, groups


@checked(**SCHEDULE)
def split_mnist(
    iterations: int = 200,
    batch_size: int = 128,
    joint: bool = True,
    seed: int = 0,
    root: Optional[PathLike] = None,
    scenario: str = "class",
    train_size: Optional[int] = None,
    test_size: Optional[int] = None,
    download: bool = False,
):
    """Split-MNIST (NGM-SGD): 5 experiences of 2 digits, (0,1), (2,3), ..., (8,9).

    Pools: the MNIST train images of each pair (``train_size``: a seeded subset of
    MNIST first); targets are the digits (``scenario="class"``: one 10-way head,
    task label 0; ``"task"``: task labels 0..4). Each experience trains on
    ``iterations * batch_size`` samples drawn with replacement (joint: from pairs
    0..k). Inputs float32 ``[N, 1, 28, 28]``.

    Accuracy: test experience k holds the test images of pair k.
    Defaults: 200 iterations of batch 128 per experience, joint.
    """
    x_tr, y_tr, x_te, y_te = _mnist(root, download, train_size, test_size, seed)
    pools, tests, groups = _pairs_split(x_tr, y_tr, x_te, y_te, MNIST, scenario)
    info = stream_info(
        "split_mnist",
        (1, 28, 28),
        10,
        scenario,
        "test experience k: accuracy on the test images of digits 2k and 2k+1",
    )
    return _ngm_stream(pools, tests, iterations, batch_size, joint, seed, info, class_groups=groups)


@checked(**SCHEDULE)
def rotated_mnist(
    angles: Sequence[float] = (0.0, 80.0, 160.0),
    iterations: int = 400,
    batch_size: int = 128,
    joint: bool = True,
    seed: int = 0,
    root: Optional[PathLike] = None,
    task_labels: bool = False,
    train_size: Optional[int] = None,
    test_size: Optional[int] = None,
    download: bool = False,
):
    """Rotated-MNIST (NGM-SGD): one experience per angle (0, 80, 160 degrees).

    Experience k's pool is MNIST's train set (``train_size``: a seeded subset)
    rotated by ``angles[k]`` degrees counter-clockwise (torchvision's ``rotate``,
    nearest-neighbour, black fill, before standardisation), and its test set the
    MNIST test set rotated alike. Targets are the digits (domain-incremental, task
    label 0 unless ``task_labels``). Fixed iterations, joint by default.

    Accuracy: test experience k is the test set rotated by ``angles[k]``.
    Defaults: 400 iterations of batch 128 per experience, joint.
    """
    if len(angles) < 1:
        raise ValueError("angles must name at least one rotation")
    x_tr, y_tr, x_te, y_te = _mnist(root, download, train_size, test_size, seed)
    pools, tests = [], []
    for k, a in enumerate(angles):
        for x, y, out in ((x_tr, y_tr, pools), (x_te, y_te, tests)):
            xr = rotate(x.unsqueeze(1), float(a)) if a % 360 else x.unsqueeze(1)
            out.append(
                ExperienceTensors(normalise(xr, MNIST), y, task_tensor(len(y), k, task_labels))
            )
    info = stream_info(
        "rotated_mnist",
        (1, 28, 28),
        10,
        label_scenario(task_labels),
        "test experience k: accuracy on the MNIST test set rotated by angles[k]",
        angles=[float(a) for a in angles],
    )
    return _ngm_stream(pools, tests, iterations, batch_size, joint, seed, info)


@checked(**SCHEDULE, n_experiences=integer(1))
def ngm_permuted_mnist(
    n_experiences: int = 3,
    iterations: int = 400,
    batch_size: int = 128,
    joint: bool = True,
    seed: int = 0,
    root: Optional[PathLike] = None,
    task_labels: bool = False,
    train_size: Optional[int] = None,
    test_size: Optional[int] = None,
    download: bool = False,
):
    """Permuted-MNIST as in NGM-SGD: 3 tasks (identity, then 2 pixel permutations).

    Pools: MNIST's train set (``train_size``: a seeded subset) under each task's
    permutation (``bm.permutations``; task 0 the identity), tests likewise.
    Fixed iterations, joint by default. Unlike :func:`permuted_mnist` (the
    plasticity stream) it samples ``iterations * batch_size`` items per experience.

    Accuracy: test experience k is the test set under permutation k.
    Defaults: 3 experiences, 400 iterations of batch 128, joint.
    """
    x_tr, y_tr, x_te, y_te = _mnist(root, download, train_size, test_size, seed)
    perms = distinct_permutations(n_experiences, 28 * 28, rng(seed, "permutations"))
    pools = permuted_pixels(normalise(x_tr, MNIST), y_tr, perms, task_labels)
    tests = permuted_pixels(normalise(x_te, MNIST), y_te, perms, task_labels)
    info = stream_info(
        "ngm_permuted_mnist",
        (1, 28, 28),
        10,
        label_scenario(task_labels),
        "test experience k: accuracy on the test set under permutation k",
    )
    return _ngm_stream(pools, tests, iterations, batch_size, joint, seed, info, permutations=perms)


@checked(**SCHEDULE)
def split_cifar10(
    iterations: int = 400,
    batch_size: int = 256,
    joint: bool = True,
    seed: int = 0,
    root: Optional[PathLike] = None,
    scenario: str = "class",
    train_per_class: Optional[int] = None,
    test_per_class: Optional[int] = None,
    augment: bool = False,
    download: bool = False,
):
    """Split-CIFAR-10 (NGM-SGD): 5 experiences of 2 classes, (0,1), ..., (8,9).

    Pools: the CIFAR-10 train images of each pair (``train_per_class``: the first
    k per class), float32 ``[N, 3, 32, 32]`` standardised per channel; targets
    the original ids (``scenario`` as in :func:`split_mnist`). Fixed iterations,
    joint by default; ``augment``: crop + flip on training batches (default off).

    Accuracy: test experience k holds the test images of classes 2k and 2k+1.
    Defaults: 400 iterations of batch 256 per experience, joint.
    """
    d = load_cifar10(
        root, download=download, train_per_class=train_per_class, test_per_class=test_per_class
    )
    pools, tests, groups = _pairs_split(d.x_train, d.y_train, d.x_test, d.y_test, CIFAR10, scenario)
    info = stream_info(
        "split_cifar10",
        (3, 32, 32),
        10,
        scenario,
        "test experience k: accuracy on the test images of classes 2k and 2k+1",
    )
    tf = augmentation(augment, CIFAR10)
    return _ngm_stream(
        pools, tests, iterations, batch_size, joint, seed, info, tf, class_groups=groups
    )


@checked(**SCHEDULE, n_experiences=integer(1))
def domain_cifar100(
    n_experiences: int = 3,
    iterations: int = 400,
    batch_size: int = 256,
    joint: bool = True,
    seed: int = 0,
    root: Optional[PathLike] = None,
    task_labels: bool = False,
    train_per_class: Optional[int] = None,
    test_per_class: Optional[int] = None,
    augment: bool = False,
    download: bool = False,
):
    """Domain-CIFAR-100 (NGM-SGD): predict the 20 superclasses; the domains are fine classes.

    Each superclass's fine classes (5 in CIFAR-100), in ascending id order, are
    split over the ``n_experiences`` tasks as evenly as possible (3 tasks: 2, 2, 1
    fine classes per superclass; ``bm.fine_groups[k]`` lists task k's fine ids).
    Experience k's pool is every train image of its fine classes, labelled with
    its superclass (0..19): the label space stays, the inputs shift
    (domain-incremental, task label 0 unless ``task_labels``). Fixed iterations,
    joint by default.

    Accuracy: test experience k holds the test images of task k's fine classes,
    scored on their superclass.
    Defaults: 3 experiences, 400 iterations of batch 256, joint.
    """
    d = load_cifar100(
        root, download=download, train_per_class=train_per_class, test_per_class=test_per_class
    )
    fine, coarse = d.y_train, d.extras["y_train_coarse"]
    n_coarse = len(d.extras["coarse_classes"])
    chunks: list[list[int]] = [[] for _ in range(n_experiences)]
    for c in range(n_coarse):
        subs = torch.unique(fine[coarse == c])
        if len(subs) < n_experiences:
            raise ValueError(
                f"n_experiences={n_experiences} exceeds the {len(subs)} fine classes of "
                f"superclass {c}"
            )
        for k, part in enumerate(torch.tensor_split(subs, n_experiences)):
            chunks[k] += part.tolist()
    groups = [torch.tensor(sorted(ch), dtype=torch.long) for ch in chunks]
    ex = d.extras
    pools = class_group_experiences(
        d.x_train, fine, groups, CIFAR100, task_labels, targets=ex["y_train_coarse"]
    )
    tests = class_group_experiences(
        d.x_test, d.y_test, groups, CIFAR100, task_labels, targets=ex["y_test_coarse"]
    )
    info = stream_info(
        "domain_cifar100",
        (3, 32, 32),
        n_coarse,
        label_scenario(task_labels),
        "test experience k: superclass accuracy on the test images of task k's fine classes",
    )
    tf = augmentation(augment, CIFAR100)
    return _ngm_stream(
        pools, tests, iterations, batch_size, joint, seed, info, tf, fine_groups=groups
    )
