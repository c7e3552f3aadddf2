"""Result files: one JSON per cell in ``<run>/cells/<cell_id>.json``, written atomically.

A result is written to a temporary file in the same folder and moved into place
with ``os.replace``, so a killed run leaves either the complete previous file or
none, never a truncated one. ``<run>/manifest.json`` records the suite and every
invocation of ``neumod run`` on the folder. The schema is documented in
``docs/suites.md``; :data:`SCHEMA_VERSION` changes when it does.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Optional, Union

SCHEMA_VERSION = 1
FINISHED = ("ok", "diverged", "collapsed")  # statuses that --resume does not redo
CELLS_DIR = "cells"
MANIFEST = "manifest.json"


def _clean(obj: Any) -> Any:
    """JSON-safe copy: non-finite floats become strings ("nan", "inf", "-inf"),
    tuples lists, numpy/torch scalars and arrays plain numbers and lists."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return _clean(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, (bool, int, str)) or obj is None:
        return obj
    if hasattr(obj, "item"):
        return _clean(obj.item())
    return str(obj)


def write_json_atomic(path: Union[str, Path], data: Any) -> Path:
    """Write ``data`` as JSON to ``path`` atomically (temp file + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_clean(data), f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def cell_path(run_dir: Union[str, Path], cell_id: str) -> Path:
    return Path(run_dir) / CELLS_DIR / f"{cell_id}.json"


def read_json(path: Union[str, Path]) -> Any:
    with open(path) as f:
        return json.load(f)


def load_cell(run_dir: Union[str, Path], cell_id: str) -> Optional[dict]:
    """The cell's result, or None when absent or unreadable."""
    p = cell_path(run_dir, cell_id)
    try:
        return read_json(p)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def is_finished(run_dir: Union[str, Path], cell_id: str) -> bool:
    """Whether the cell has a result with a finished status (``ok`` or ``diverged``)."""
    r = load_cell(run_dir, cell_id)
    return r is not None and r.get("status") in FINISHED


def load_results(run_dir: Union[str, Path]) -> list[dict]:
    """All cell results of a run folder, sorted by cell id."""
    d = Path(run_dir) / CELLS_DIR
    if not d.is_dir():
        raise FileNotFoundError(f"no results in {run_dir}: expected {d}/<cell>.json")
    out = []
    for p in sorted(d.glob("*.json")):
        r = read_json(p)
        if r.get("schema_version", 0) > SCHEMA_VERSION:
            raise ValueError(
                f"{p} has schema version {r['schema_version']}, newer than this library's "
                f"{SCHEMA_VERSION}: upgrade avalanche-neumod to read it"
            )
        out.append(r)
    return out


def load_manifest(run_dir: Union[str, Path]) -> Optional[dict]:
    p = Path(run_dir) / MANIFEST
    return read_json(p) if p.exists() else None


def update_manifest(run_dir: Union[str, Path], suite: dict, invocation: dict) -> dict:
    """Record ``suite`` and append ``invocation`` (command, times, cells) to the manifest."""
    m = load_manifest(run_dir) or {"schema_version": SCHEMA_VERSION, "invocations": []}
    m["suite"] = suite
    invs: list = m["invocations"]
    if invs and invs[-1].get("id") == invocation.get("id"):
        invs[-1] = invocation
    else:
        invs.append(invocation)
    write_json_atomic(Path(run_dir) / MANIFEST, m)
    return m


def as_float(x: Any) -> float:
    """A metric value read back from JSON ("nan"/"inf" strings included)."""
    if x is None:
        return math.nan
    return float(x)


def finished_ids(run_dir: Union[str, Path], ids: Iterable[str]) -> set[str]:
    return {i for i in ids if is_finished(run_dir, i)}
