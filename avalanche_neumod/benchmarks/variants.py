"""Stream variants of any stream: a recurring task R, and joint (cumulative) training.

Both keep the base stream's ``neumod_info`` (its ``accuracy_kind`` included),
adding ``variant`` and a note to ``accuracy``. See ``docs/streams.md``, "Variants".
"""

from __future__ import annotations

import copy

import torch

from ..argument_rules import checked, integer
from ._common import build
from .ngm import sample_experiences
from .sampled import SampledTensors
from .tensor_data import ExperienceTensors, experience_tensors


def _check_nonempty(bm, who: str) -> None:
    """A clear error for a stream without training experiences (instead of an IndexError)."""
    if len(bm.train_stream) == 0:
        raise ValueError(f"{who}() needs a stream with at least one training experience; got none")


def _parts(bm) -> tuple[list[ExperienceTensors], list[ExperienceTensors], dict, dict]:
    train = [experience_tensors(e) for e in bm.train_stream]
    test = [experience_tensors(e) for e in bm.test_stream]
    info = copy.deepcopy(getattr(bm, "neumod_info", {}))
    transforms = dict(getattr(bm, "neumod_transforms", {}))
    if not transforms:
        bt = getattr(bm.train_stream[0], "train_batch_transform", None)
        transforms = {"train_batch_transform": bt} if bt is not None else {}
    return train, test, info, transforms


def _carry(bm, new, names: tuple[str, ...]) -> None:
    for n in names:
        if hasattr(bm, n):
            setattr(new, n, getattr(bm, n))


_CARRIED = (
    "permutations",
    "label_permutations",
    "true_labels",
    "class_permutations",
    "class_groups",
    "class_names",
    "fine_groups",
    "train_indices",
    "test_indices",
)


@checked(every=integer(2))
def recurring(bm, every: int = 2):
    """A fixed task R recurs every ``every``-th experience: R, A1, R, A2, ... (every=2).

    R is ``bm``'s first training experience and A1, A2, ... its others, in order;
    with ``every=3``: R, A1, A2, R, A3, A4, ... The stream ends after the last A.
    R's occurrences share one dataset (the same images and labels each time; for
    NGM streams the same with-replacement sample). Train experiences carry
    ``recurring`` (True for R) and ``task_id`` (the base experience index: 0 for R).

    The test stream is ``bm``'s, unchanged: R's test set appears once, as test
    experience 0 (``bm.recurring_test_experiences == [0]``), so the "final
    accuracy on R" is the accuracy on test experience 0 after the last training
    experience. ``bm.train_order`` lists the base index of each train experience.
    """
    _check_nonempty(bm, "recurring")
    if getattr(bm, "neumod_info", {}).get("variant"):
        raise ValueError(f"cannot wrap a {bm.neumod_info['variant']} stream in recurring()")
    train, test, info, transforms = _parts(bm)
    if len(train) < 2:
        raise ValueError("recurring() needs a stream of at least 2 experiences (R and one other)")
    order: list[int] = []
    a = 1
    while a < len(train):
        if len(order) % every == 0:
            order.append(0)  # R
        else:
            order.append(a)
            a += 1
    info.update(
        variant="recurring",
        recurring_every=every,
        recurring_test_experiences=[0],
        train_order=order,
        n_experiences=len(order),
        accuracy=info.get("accuracy", "")
        + "; recurring: test experience 0 is R (listed once), the final accuracy on R is "
        "its accuracy after the last training experience",
    )
    new = build([train[i] for i in order], test, info, transforms)
    _carry(bm, new, _CARRIED)
    new.train_order = order
    new.recurring_test_experiences = [0]
    for exp, i in zip(new.train_stream, order):
        exp.task_id = i
        exp.recurring = i == 0
    for exp in new.test_stream:
        exp.recurring = exp.task_id == 0
    _copy_iterations(bm, new)
    return new


def joint(bm):
    """Joint (cumulative) training: experience k trains on the union of experiences 0..k.

    Tests are unchanged. For NGM streams (fixed iterations), experience k is a new
    with-replacement sample of ``iterations * batch_size`` items from the union of
    the pools of experiences 0..k, exactly what the generator gives with
    ``joint=True``. For the other streams it is the concatenation of the training
    data of experiences 0..k (stored as indices into one pool, not copies).
    """
    _check_nonempty(bm, "joint")
    info0 = getattr(bm, "neumod_info", {})
    if info0.get("variant") or info0.get("joint"):
        raise ValueError("this stream is already a joint or recurring variant")
    train, test, info, transforms = _parts(bm)
    info.update(variant="joint", joint=True)
    info["accuracy"] = info.get("accuracy", "") + (
        "; joint: experience k trains on the union of experiences 0..k"
    )
    if hasattr(bm, "neumod_pool") and "iterations" in info:
        pool, offsets = bm.neumod_pool, bm.neumod_pool_offsets
        new_train = sample_experiences(
            pool, offsets, info["iterations"], info["batch_size"], True, info.get("seed", 0)
        )
        new = build(new_train, test, info, transforms)
        _copy_iterations(bm, new)
    else:
        pool = ExperienceTensors.cat(train)
        ends = []
        n = 0
        for d in train:
            n += len(d)
            ends.append(n)
        new_train = [SampledTensors(pool, torch.arange(e)) for e in ends]
        new = build(new_train, test, info, transforms)
    _carry(bm, new, _CARRIED)
    return new


def _copy_iterations(bm, new) -> None:
    """Carry an NGM stream's iterations, batch size and pool over to ``new``."""
    info = getattr(bm, "neumod_info", {})
    if "iterations" in info:
        for exp in new.train_stream:
            exp.iterations = info["iterations"]
            exp.batch_size = info["batch_size"]
        if hasattr(bm, "neumod_pool"):
            new.neumod_pool, new.neumod_pool_offsets = bm.neumod_pool, bm.neumod_pool_offsets
