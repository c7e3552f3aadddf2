"""Result files: one per cell in ``<run>/cells/<cell_id>.json.gz``, written atomically.

Cells are stored compactly (:mod:`.compact`: gzip-compressed JSON with long curves as
binary arrays, lossless); folders written before that hold ``<cell_id>.json`` (plain
JSON) and still load, and rewriting a cell replaces its plain file. The manifest and
``tuning.json`` stay plain JSON.

A result is written to a temporary file in the same folder and moved into place
with ``os.replace``, so a killed run leaves either the complete previous file or
none, never a truncated one. ``<run>/manifest.json`` records the suite and every
invocation of ``neumod run`` on the folder. A file damaged anyway (a disk filled up, a
partial copy) is never read as a bare ``JSONDecodeError``: :class:`DamagedFile` names it;
:func:`scan_results` skips such cells (a report warns, ``--resume`` redoes them) and
:func:`update_manifest` moves a damaged manifest aside. The schema is documented in
``docs/suites.md`` and typed by :mod:`avalanche_neumod.records` (:data:`SCHEMA_VERSION`
changes when it does; older files are read through its ``migrate``).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
import warnings
import zlib
from pathlib import Path
from typing import Any, Optional, Union

from ..records import SCHEMA_VERSION  # noqa: F401 - the records' version, re-exported
from . import compact

FINISHED = ("ok", "diverged", "collapsed")  # statuses that --resume does not redo
CELLS_DIR = "cells"
MANIFEST = "manifest.json"
CELL_SUFFIX = ".json.gz"  # how cells are written
PLAIN_SUFFIX = ".json"  # how cells were written before the compact format (still read)


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


def _is_compact(path: Path) -> bool:
    return path.name.endswith(CELL_SUFFIX)


def write_json_atomic(path: Union[str, Path], data: Any) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + ``os.replace``): compact
    (:mod:`.compact`) when the name ends in ``.json.gz``, else indented JSON. Writing a
    compact cell removes the plain ``.json`` file of the same cell, if any."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if _is_compact(path):
                f.write(compact.dumps(_clean(data)))
            else:
                f.write(json.dumps(_clean(data), indent=1, sort_keys=True).encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        if _is_compact(path):
            plain = path.with_name(path.name[: -len(CELL_SUFFIX)] + PLAIN_SUFFIX)
            if plain.exists():
                plain.unlink()
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def cell_path(run_dir: Union[str, Path], cell_id: str) -> Path:
    """Where the cell's result is written (compact)."""
    return Path(run_dir) / CELLS_DIR / f"{cell_id}{CELL_SUFFIX}"


def stored_cell_path(run_dir: Union[str, Path], cell_id: str) -> Path:
    """The cell's result file as stored: the compact one, else a plain ``.json`` of an older
    folder, else (neither exists) the compact path."""
    p = cell_path(run_dir, cell_id)
    plain = Path(run_dir) / CELLS_DIR / f"{cell_id}{PLAIN_SUFFIX}"
    return plain if not p.exists() and plain.exists() else p


def cell_id_of(path: Union[str, Path]) -> str:
    """The cell id of a result file name (either format)."""
    name = Path(path).name
    for suffix in (CELL_SUFFIX, PLAIN_SUFFIX):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def cell_files(run_dir: Union[str, Path]) -> list[Path]:
    """Every cell result file of a run folder, one per cell (compact preferred), by cell id."""
    d = Path(run_dir) / CELLS_DIR
    if not d.is_dir():
        return []
    found: dict[str, Path] = {}
    for p in sorted(d.glob(f"*{PLAIN_SUFFIX}")) + sorted(d.glob(f"*{CELL_SUFFIX}")):
        if not p.name.startswith("."):
            found[cell_id_of(p)] = p  # the compact file, listed second, wins
    return [found[k] for k in sorted(found)]


class DamagedFile(ValueError):
    """A result or manifest file that is not valid JSON (or not a JSON object); names the file."""

    def __init__(self, path: Union[str, Path], reason: str):
        super().__init__(f"{path} is damaged ({reason})")
        self.path = Path(path)
        self.reason = reason


class DamagedFileWarning(UserWarning):
    """A damaged file was skipped or moved aside."""


def read_json(path: Union[str, Path]) -> Any:
    """The JSON object in ``path``; :class:`DamagedFile` (naming it) when unreadable as one."""
    try:
        if _is_compact(Path(path)):
            data = compact.loads(Path(path).read_bytes())
        else:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, EOFError, zlib.error) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise DamagedFile(path, f"{type(e).__name__}: {e}") from e
    except (KeyError, ValueError, TypeError) as e:  # a compact file whose arrays do not decode
        raise DamagedFile(path, f"{type(e).__name__}: {e}") from e
    if not isinstance(data, dict):
        raise DamagedFile(path, f"a JSON object was expected, got {type(data).__name__}")
    return data


def load_cell(run_dir: Union[str, Path], cell_id: str) -> Optional[dict]:
    """The cell's result, or None when absent or damaged (a damaged cell is redone)."""
    p = stored_cell_path(run_dir, cell_id)
    try:
        return read_json(p)
    except (FileNotFoundError, DamagedFile):
        return None


def damaged_cell(run_dir: Union[str, Path], cell_id: str) -> Optional[DamagedFile]:
    """The error of the cell's result file when it exists but is damaged, else None."""
    try:
        read_json(stored_cell_path(run_dir, cell_id))
    except DamagedFile as e:
        return e
    except FileNotFoundError:
        pass
    return None


def is_finished(run_dir: Union[str, Path], cell_id: str) -> bool:
    """Whether the cell has a result with a finished status (``ok`` or ``diverged``)."""
    r = load_cell(run_dir, cell_id)
    return r is not None and r.get("status") in FINISHED


def scan_results(run_dir: Union[str, Path]) -> tuple[list[dict], list[DamagedFile]]:
    """All readable cell results of a run folder (sorted by cell id) and the damaged files."""
    d = Path(run_dir) / CELLS_DIR
    if not d.is_dir():
        raise FileNotFoundError(f"no results in {run_dir}: expected {d}/<cell>{CELL_SUFFIX}")
    out, damaged = [], []
    for p in cell_files(run_dir):
        try:
            r = read_json(p)
            if not isinstance(r.get("config"), dict) or "status" not in r:
                raise DamagedFile(p, "not a cell result: no 'config' or 'status'")
        except DamagedFile as e:
            damaged.append(e)
            continue
        if r.get("schema_version", 0) > SCHEMA_VERSION:
            raise ValueError(
                f"{p} has schema version {r['schema_version']}, newer than this library's "
                f"{SCHEMA_VERSION}: upgrade avalanche-neumod to read it"
            )
        out.append(r)
    return out, damaged


def load_results(run_dir: Union[str, Path]) -> list[dict]:
    """All readable cell results of a run folder, sorted by cell id; each damaged file is
    skipped with a :class:`DamagedFileWarning` naming it."""
    out, damaged = scan_results(run_dir)
    for e in damaged:
        warnings.warn(f"skipped: {e}", DamagedFileWarning, stacklevel=2)
    return out


def load_manifest(run_dir: Union[str, Path]) -> Optional[dict]:
    """The run folder's manifest, None when absent; :class:`DamagedFile` when damaged."""
    p = Path(run_dir) / MANIFEST
    return read_json(p) if p.exists() else None


def _fresh_manifest() -> dict:
    return {"schema_version": SCHEMA_VERSION, "invocations": []}


def set_aside_damaged_manifest(run_dir: Union[str, Path]) -> Optional[Path]:
    """Move a damaged manifest to ``manifest.json.damaged-<time>`` (warning naming both);
    the path it moved to, or None when the manifest is absent or readable."""
    try:
        load_manifest(run_dir)
        return None
    except DamagedFile as e:
        dest = e.path.with_name(f"{e.path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
        os.replace(e.path, dest)
        warnings.warn(
            f"{e}; moved to {dest} and a new manifest started (the cell files are intact)",
            DamagedFileWarning,
            stacklevel=2,
        )
        return dest


def update_manifest(run_dir: Union[str, Path], suite: dict, invocation: dict) -> dict:
    """Record ``suite`` and append ``invocation`` (command, times, cells) to the manifest.

    Every suite written into the folder is kept in ``suites`` (name, preset, path), so a
    report can tell when a folder holds more than one.
    """
    set_aside_damaged_manifest(run_dir)
    m = load_manifest(run_dir) or _fresh_manifest()
    m.setdefault("invocations", [])
    m["suite"] = suite
    ident = {k: suite.get(k) for k in ("name", "preset", "path")}
    known = m.setdefault("suites", [])
    if ident not in known:
        known.append(ident)
    invs: list = m["invocations"]
    at = [i for i, inv in enumerate(invs) if inv.get("id") == invocation.get("id")]
    if at:
        invs[at[-1]] = invocation
    else:
        invs.append(invocation)
    write_json_atomic(Path(run_dir) / MANIFEST, m)
    return m


def compact_run(run_dir: Union[str, Path]) -> list[str]:
    """Rewrite every plain ``<cell>.json`` of a run folder as ``<cell>.json.gz``; the ids
    converted. Each cell's compact form is decoded and compared with the plain document
    before it is written (and the plain file removed), so nothing is lost; a damaged plain
    file is left as it is."""
    done = []
    for p in cell_files(run_dir):
        if _is_compact(p):
            continue
        try:
            data = _clean(read_json(p))
        except DamagedFile as e:
            warnings.warn(f"left as it is: {e}", DamagedFileWarning, stacklevel=2)
            continue
        back = compact.loads(compact.dumps(data))
        if json.dumps(back, sort_keys=True) != json.dumps(data, sort_keys=True):
            raise ValueError(f"{p}: the compact copy does not read back equal; kept as it is")
        cid = cell_id_of(p)
        write_json_atomic(cell_path(run_dir, cid), data)  # removes the plain file once written
        done.append(cid)
    return done
