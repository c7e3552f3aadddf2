"""Compute once: a cell that another run folder has already trained is adopted, not rerun.

Two suites often hold the same training run under different names: the ablation's
Naive and NeuMoSync rows are the plasticity suite's, Table 2's Naive row is Table 1's. A
cell's result depends only on what it trains (stream, model, method and its arguments,
optimizer, train settings, measures, seed) and on the code that trains it; the suite,
preset, keys, labels and tuning bookkeeping only name it. :func:`training_key` is that
content, hashed; a :class:`CellPool` indexes the finished cells of other run folders by
it, and :func:`adopt` copies a match into this run's folder under this suite's
configuration, recording where it came from (``shared_from``). The copy keeps every
number of the source record, so every report reads the same result, and each run folder
stays self-contained (it can be moved, committed or reported alone).

Only cells made by the same code as this process (its git commit, else its package
version: :func:`avalanche_neumod.experiment.launch` ``_code``) are adopted: the same
configuration at another commit may compute something else.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

from .results import FINISHED, cell_files, cell_path, read_json, write_json_atomic

#: Configuration keys that name a cell without changing what it trains.
NAMING_KEYS = frozenset(
    {"cell_id", "suite", "preset", "stream_key", "method_key", "stream_label", "method_label",
     "tuning", "tuned"}
)  # fmt: skip


def training_key(cfg: dict) -> str:
    """SHA-256 of what the cell trains: its configuration without :data:`NAMING_KEYS`."""
    content = {k: v for k, v in cfg.items() if k not in NAMING_KEYS}
    blob = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def code_of(versions: dict) -> str:
    """Which code made a record: its git commit when recorded, else the package version."""
    commit = versions.get("git_commit")
    if commit:
        return f"commit {commit[:12]}"
    return f"avalanche_neumod {versions.get('avalanche_neumod', '?')}"


@dataclass
class CellPool:
    """The finished cells of some run folders, by :func:`training_key`, made by ``code``.

    ``other_code`` counts finished cells that matched nothing because another code made
    them (said in the log, so a user sees why a shared row trains again)."""

    code: str
    cells: dict[str, tuple[Path, dict]] = field(default_factory=dict)
    other_code: int = 0

    @classmethod
    def scan(cls, runs: Iterable[Union[str, Path]], code: str, exclude: Optional[Path] = None):
        """Index the finished cells of ``runs`` (missing folders are skipped; ``exclude``,
        this run's own folder, is not read). Cells adopted from elsewhere are indexed too,
        so sharing is transitive; the first folder listed wins a tie."""
        pool = cls(code=code)
        skip = exclude.resolve() if exclude is not None else None
        for run in runs:
            run = Path(run)
            if not run.is_dir() or (skip is not None and run.resolve() == skip):
                continue
            for p in cell_files(run):
                try:
                    r = read_json(p)
                    cfg = r["config"]
                except (ValueError, KeyError, TypeError):
                    continue  # damaged or foreign files are the owner run's business
                if r.get("status") not in FINISHED:
                    continue
                if code_of(r.get("versions") or {}) != code:
                    pool.other_code += 1
                    continue
                pool.cells.setdefault(training_key(cfg), (p, r))
        return pool

    def find(self, cfg: dict) -> Optional[tuple[Path, dict]]:
        """The stored cell that trained exactly what ``cfg`` trains, or None."""
        return self.cells.get(training_key(cfg))


def adopt(pool: CellPool, todo: list[dict], out: Path,
          log: Callable[[str], None] = lambda m: None) -> dict[str, str]:  # fmt: skip
    """Write into ``out`` every cell of ``todo`` that ``pool`` already holds; return
    ``{cell id: source file}`` for those (the caller runs the rest).

    The adopted record is the source's with this suite's configuration (so ``--resume``
    and the report treat it as this suite's cell) and ``shared_from`` naming the source."""
    adopted: dict[str, str] = {}
    for cfg in todo:
        hit = pool.find(cfg)
        if hit is None:
            continue
        src, rec = hit
        copy = dict(rec)
        copy["cell_id"] = cfg["cell_id"]
        copy["config"] = cfg
        origin = rec.get("shared_from") or {"cell_id": rec.get("cell_id"), "file": str(src)}
        copy["shared_from"] = origin
        write_json_atomic(cell_path(out, cfg["cell_id"]), copy)
        adopted[cfg["cell_id"]] = str(src)
    if adopted:
        log(f"compute once: {len(adopted)} cell(s) adopted from other run folders, not rerun")
    if pool.other_code:
        log(
            f"compute once: {pool.other_code} finished cell(s) in the shared folders were made "
            f"by other code than this run ({pool.code}) and are not adopted"
        )
    return adopted
