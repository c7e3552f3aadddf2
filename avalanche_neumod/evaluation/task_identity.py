"""Which test experience a training experience is scored on: the task's identity.

A stream may train a task more than once (``benchmarks.recurring``: R, A1, R, A2, ...)
while its test stream lists every task once. The stability-gap metric and the transfer
probes therefore key what they measure by the *task*, not by the training experience's
index: the identity of an experience is its ``task_id`` (set by this library's
streams: the base experience index, shared by a task's test experience and all its
training occurrences), else Avalanche's ``current_experience``, else (plain data
given as ``experiences=``) its position in the list. On a stream without repeats
training experience ``k`` maps to test experience ``k``, as before.
"""

from __future__ import annotations

from typing import Sequence


def experience_identity(experience, default: int | None = None) -> int:
    """``task_id`` if the experience has one, else ``current_experience``, else ``default``."""
    for attr in ("task_id", "current_experience"):
        v = getattr(experience, attr, None)
        if v is not None:
            return int(v)
    if default is None:
        raise ValueError(
            f"{type(experience).__name__} has neither task_id nor current_experience: "
            "cannot tell which test experience it belongs to"
        )
    return int(default)


class TaskIndex:
    """Maps a training experience to the position of its task's test experience."""

    def __init__(self, test_experiences: Sequence):
        ids = [experience_identity(e, j) for j, e in enumerate(test_experiences)]
        if len(set(ids)) != len(ids):
            raise ValueError(
                f"the test experiences' identities (task_id/current_experience) repeat: {ids}; "
                "list each task once"
            )
        self.identities = ids
        self.position = {i: j for j, i in enumerate(ids)}

    def __len__(self) -> int:
        return len(self.identities)

    def of(self, train_experience) -> int:
        """The test position of ``train_experience``'s task (ValueError if absent)."""
        i = experience_identity(train_experience)
        if i not in self.position:
            raise ValueError(
                f"training experience {getattr(train_experience, 'current_experience', '?')} "
                f"is task {i}, which is not among the {len(self)} test experiences given "
                f"(identities {self.identities})"
            )
        return self.position[i]
