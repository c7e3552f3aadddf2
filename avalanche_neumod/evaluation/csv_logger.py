"""A CSV logger for every metric an ``EvaluationPlugin`` emits, one row per value.

Avalanche's ``CSVLogger`` writes fixed accuracy/loss columns and drops every other
metric. :class:`MetricsCSVLogger` writes a long-format table instead, whatever the
metric: one row ``name, x, value, phase, stream, experience, task`` per value.

Which values are written: one number (a Python or NumPy number, a bool, a tensor or
array with exactly one element, or an ``AlternativeValues`` holding one of these).
A dict is flattened to ``name/key`` (recursively), as Avalanche's loggers do.
Anything else (images, figures, histograms and other tensors of several elements,
lists such as whole curves, strings) is skipped and its name added to
``logger.skipped``: curves reach the CSV as their points, emitted one value each.

The name is parsed after Avalanche's scheme ``Metric/<phase>_phase/<stream>_stream
[/TaskNNN][/ExpNNN]``: ``phase`` (``train``/``eval``), ``stream`` (e.g. ``test``),
``experience`` and ``task`` (integers) are filled when the name has them, else left
empty.
"""

from __future__ import annotations

import csv
import numbers
import re
import weakref
from pathlib import Path
from typing import IO, List, Optional, Union

import numpy as np
import torch
from avalanche.evaluation.metric_results import AlternativeValues, MetricValue
from avalanche.logging import BaseLogger

COLUMNS = ("name", "x", "value", "phase", "stream", "experience", "task")
_EXP = re.compile(r"Exp(\d+)")
_TASK = re.compile(r"Task(\d+)")


def parse_name(name: str) -> dict[str, Union[str, int]]:
    """``phase``, ``stream``, ``experience`` and ``task`` of an Avalanche-style metric name
    (``""`` where the name does not say)."""
    out: dict[str, Union[str, int]] = {"phase": "", "stream": "", "experience": "", "task": ""}
    for part in name.split("/")[1:]:
        if part.endswith("_phase") and not out["phase"]:
            out["phase"] = part[: -len("_phase")]
        elif part.endswith("_stream") and not out["stream"]:
            out["stream"] = part[: -len("_stream")]
        elif (m := _EXP.fullmatch(part)) and out["experience"] == "":
            out["experience"] = int(m.group(1))
        elif (m := _TASK.fullmatch(part)) and out["task"] == "":
            out["task"] = int(m.group(1))
    return out


def scalar(value) -> Optional[Union[int, float]]:
    """``value`` as one int or float, or ``None`` when it is not a single number."""
    if isinstance(value, AlternativeValues):
        for alt in value.alternatives:
            if (v := scalar(alt)) is not None:
                return v
        return None
    if isinstance(value, (torch.Tensor, np.ndarray)):
        n = value.numel() if isinstance(value, torch.Tensor) else value.size
        return scalar(value.reshape(-1)[0].item()) if n == 1 else None
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return None


class MetricsCSVLogger(BaseLogger):
    """Append every scalar metric value to a CSV file, one long-format row each.

    Columns ``name, x, value, phase, stream, experience, task`` (see the module
    docstring for which values are written and how names are parsed). Rows are
    flushed after every event the ``EvaluationPlugin`` reports; ``close()`` (or
    leaving a ``with`` block) closes the file, which a later value reopens in append
    mode.

    Args:
        path: the CSV file (default ``csvlogs/metrics.csv``); parent folders are made.
        append: keep the rows already in ``path`` (default) or start it afresh.
    """

    def __init__(self, path: Union[str, Path] = "csvlogs/metrics.csv", *, append: bool = True):
        super().__init__()
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"path must be a file, got the folder {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.skipped: set[str] = set()
        self._file: Optional[IO[str]] = None
        self._writer = None
        if append and self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, newline="") as f:
                header = tuple(next(csv.reader(f), ()))
            if header != COLUMNS:
                raise ValueError(
                    f"{self.path} has columns {list(header)}, not {list(COLUMNS)}: "
                    "give another path or append=False"
                )
        else:
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(COLUMNS)

    def _open(self):
        if self._file is None:
            self._file = open(self.path, "a", newline="")
            self._writer = csv.writer(self._file)
            self._finalizer = weakref.finalize(self, self._file.close)
        return self._writer

    def log_single_metric(self, name: str, value, x_plot: int) -> None:
        """Write ``value`` (flattening dicts to ``name/key``), or record ``name`` as skipped."""
        if isinstance(value, dict):
            for k, v in value.items():
                self.log_single_metric(f"{name}/{k}", v, x_plot)
            return
        v = scalar(value)
        if v is None:
            self.skipped.add(name)
            return
        p = parse_name(name)
        row = (name, x_plot, v, p["phase"], p["stream"], p["experience"], p["task"])
        self._open().writerow(row)

    def log_metrics(self, metric_values: List[MetricValue]) -> None:
        """Write one event's values and flush them to disk."""
        for mval in metric_values:
            self.log_single_metric(mval.name, mval.value, mval.x_plot)
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file is not None:
            self._finalizer()
            self._file = self._writer = None

    def __enter__(self) -> MetricsCSVLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:  # checkpoints and deep copies: no open file
        state = self.__dict__.copy()
        for key in ("_file", "_writer", "_finalizer"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _file=None, _writer=None)
