"""Cell checkpoints at experience boundaries, so a killed or preempted cell continues.

After each training experience (and its evaluation), a cell saves
``<run>/checkpoints/<cell_id>.ckpt``: the whole strategy (model, optimizer, plugins,
evaluator and their state, pickled as Avalanche's own checkpointing does), the
cell's optional measures, the partial accuracy matrix, timings and curves, and the
RNG states of torch, numpy and random. The stream is not stored: it is rebuilt from
the cell's seed, and the checkpoint refers to its objects (the benchmark, streams,
experiences, their datasets and tensors) by name, so the checkpoint holds training
state, not data. Writes are atomic (temporary file, fsync, ``os.replace``): a kill
leaves the previous checkpoint or the new one.

A checkpoint is used only for the cell and configuration that wrote it; one that
cannot be read (another library version, a damaged file) is discarded with a
warning and the cell starts from the beginning. The cell deletes its checkpoint
once its result file is written.
"""

from __future__ import annotations

import os
import pickle
import random
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import numpy as np
import torch

from ..benchmarks.tensor_data import TENSORS_ATTR

# 2: the stability-gap and transfer metrics live in the evaluator (one object each), not
# in the plugins; a format-1 checkpoint is discarded and its cell starts again
FORMAT = 2
CKPT_DIR = "checkpoints"
# strategy attributes that only hold the current experience's loaders and minibatch:
# stored empty (the next experience sets them again). A FastTemplate's event-handler
# caches never enter a pickle (``FastTemplate.__getstate__``).
TRANSIENT = {
    "dataloader": lambda: None,
    "adapted_dataset": lambda: None,
    "mbatch": lambda: None,
    "mb_output": lambda: None,
    "loss": lambda: None,
}


class CheckpointWarning(UserWarning):
    """A checkpoint could not be written or read; the cell goes on without it."""


def ckpt_path(run_dir: Union[str, Path], cell_id: str) -> Path:
    return Path(run_dir) / CKPT_DIR / f"{cell_id}.ckpt"


def rng_state() -> dict:
    """The RNG states of torch (CPU and CUDA), numpy and random."""
    st = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "random": random.getstate(),
    }
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    np.random.set_state(st["numpy"])
    random.setstate(st["random"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def stream_refs(bm) -> dict[str, Any]:
    """The stream's objects a checkpoint refers to by name instead of storing them."""

    refs: dict[str, Any] = {"bm": bm}
    for name in ("train_stream", "test_stream"):
        stream = getattr(bm, name, None)
        if stream is None:
            continue
        refs[name] = stream
        for i, exp in enumerate(stream):
            key = f"{name}/{i}"
            refs[key] = exp
            ds = getattr(exp, "dataset", None)
            if ds is not None:
                refs[f"{key}/dataset"] = ds
            t = getattr(exp, TENSORS_ATTR, None)
            if t is not None:
                refs[f"{key}/tensors"] = t
                for f in ("x", "y", "t"):
                    if isinstance(getattr(t, f, None), torch.Tensor):
                        refs[f"{key}/tensors/{f}"] = getattr(t, f)
    return refs


class _Pickler(pickle.Pickler):
    def __init__(self, f, refs: dict[str, Any]):
        super().__init__(f, protocol=4)
        self._ids = {id(v): k for k, v in refs.items()}

    def persistent_id(self, obj):
        return self._ids.get(id(obj))


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, refs: dict[str, Any]):
        super().__init__(f)
        self._refs = refs

    def persistent_load(self, pid):
        try:
            return self._refs[pid]
        except KeyError:
            raise pickle.UnpicklingError(f"the rebuilt stream has no {pid!r}") from None


@contextmanager
def _without_transients(strategy) -> Iterator[None]:
    saved = {a: getattr(strategy, a) for a in TRANSIENT if hasattr(strategy, a)}
    try:
        for a in saved:
            setattr(strategy, a, TRANSIENT[a]())
        yield
    finally:
        for a, v in saved.items():
            setattr(strategy, a, v)


def save(path: Union[str, Path], cell_id: str, config: dict, state: dict, refs: dict) -> bool:
    """Write the checkpoint atomically; False (with a warning) when it cannot be pickled."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "format": FORMAT,
        "cell_id": cell_id,
        "config": config,
        "state": state,
        "rng": rng_state(),
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f, _without_transients(state.get("strategy")):
            _Pickler(f, refs).dump(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return True
    except Exception as e:  # noqa: BLE001 - a checkpoint never fails the cell
        warnings.warn(
            f"{cell_id}: cannot checkpoint ({type(e).__name__}: {e}); "
            "the cell goes on without checkpoints",
            CheckpointWarning,
            stacklevel=2,
        )
        return False
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load(path: Union[str, Path], cell_id: str, config: dict, refs: dict) -> Optional[dict]:
    """The checkpoint's ``state`` (RNG states restored), or None when absent or unusable
    (a warning says why, and the file is removed)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with open(path, "rb") as f:
            data = _Unpickler(f, refs).load()
        if data.get("format") != FORMAT or data.get("cell_id") != cell_id:
            raise ValueError("written for another cell or format")
        if data.get("config") != config:
            raise ValueError("written for another configuration of this cell")
    except Exception as e:  # noqa: BLE001
        warnings.warn(
            f"{path}: checkpoint not usable ({type(e).__name__}: {e}); "
            "the cell starts from the beginning",
            CheckpointWarning,
            stacklevel=2,
        )
        remove(path)
        return None
    set_rng_state(data["rng"])
    return data["state"]


def remove(path: Union[str, Path]) -> None:
    try:
        Path(path).unlink()
    except FileNotFoundError:
        pass
