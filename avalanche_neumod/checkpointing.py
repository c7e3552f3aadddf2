"""Avalanche's strategy checkpointing, made to work with this environment and atomic.

``avalanche.checkpointing.save_checkpoint`` pickles the strategy with dill. torch (2.x)
deletes the names of its optimizer submodules from ``torch.optim`` (``del sgd``), so dill
cannot find ``torch.optim.sgd.SGD`` by reference and pickles the class by value, which
fails for every strategy with a torch optimizer (``PicklingError: Can't pickle sentinel``
with typing_extensions 4.16, ``Can't pickle <class 'PyCapsule'>`` with 4.15 and earlier; no
released dill, 0.3.6 to 0.4.1, avoids it), and leaves a truncated file that the next
``maybe_load_checkpoint`` cannot read. :func:`save_checkpoint` and
:func:`maybe_load_checkpoint` here are Avalanche's, called with those submodule names
restored for the call, and the save goes to a temporary file in the same folder that
replaces ``fname`` only when it is complete (``os.replace``): a failed save leaves the
previous checkpoint, or none, never a broken one.

Usage is Avalanche's::

    strategy, start = maybe_load_checkpoint(strategy, "ckpt.pkl")
    for exp in bm.train_stream[start:]:
        strategy.train(exp)
        save_checkpoint(strategy, "ckpt.pkl")
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Any, Iterator, Optional, TypeVar

import avalanche.checkpointing as avalanche_checkpointing
import torch.optim

T = TypeVar("T")


@contextlib.contextmanager
def _optimizer_modules_visible() -> Iterator[None]:
    """``torch.optim.<submodule>`` attributes restored while dill pickles, then removed."""
    added = []
    for name, mod in list(sys.modules.items()):
        parent, _, leaf = name.rpartition(".")
        if parent == "torch.optim" and mod is not None and not hasattr(torch.optim, leaf):
            setattr(torch.optim, leaf, mod)
            added.append(leaf)
    try:
        yield
    finally:
        for leaf in added:
            delattr(torch.optim, leaf)


def save_checkpoint(
    strategy: Any, fname: "os.PathLike | str", exclude: Optional[list] = None
) -> None:
    """Avalanche's ``save_checkpoint(strategy, fname, exclude)``, written atomically."""
    fname = os.fspath(fname)
    folder = os.path.dirname(os.path.abspath(fname))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(fname) + ".", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        with _optimizer_modules_visible():
            avalanche_checkpointing.save_checkpoint(strategy, tmp, exclude=exclude)
        os.replace(tmp, fname)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def maybe_load_checkpoint(
    strategy: T, fname: "os.PathLike | str", map_location: Any = None, unique_objects: Any = None
) -> tuple[T, int]:
    """Avalanche's ``maybe_load_checkpoint``: the strategy from ``fname`` and the index of the
    next training experience, or ``(strategy, 0)`` when there is no file."""
    with _optimizer_modules_visible():
        return avalanche_checkpointing.maybe_load_checkpoint(
            strategy, os.fspath(fname), map_location, unique_objects
        )
