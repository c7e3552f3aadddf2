"""Launch a suite's cells: in this process, in parallel local processes, or via submitit.

Every cell writes its own result file (``cell.run_cell_to_file``), so all
launchers land results in the same ``runs/NAME`` folder, and ``--resume``
skips cells whose file says "ok" or "diverged" whichever launcher wrote it.

- ``local`` with ``jobs=1``: cells run one after the other in this process,
  with a progress bar over cells and one over the current cell's iterations.
- ``local`` with ``jobs=N``: ``concurrent.futures.ProcessPoolExecutor`` with
  ``spawn`` processes, each cell with ``cpu_count // N`` torch threads.
- ``submitit``: ``submitit.AutoExecutor``: SLURM on a cluster (one array job,
  at most ``jobs`` cells running at once), else its local executor; ``cluster``
  picks one explicitly (``"slurm"``, ``"local"``, ``"debug"``: in-process).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Optional

from . import tuning
from .cell import run_cell_to_file
from .results import (
    FINISHED,
    cell_path,
    load_cell,
    update_manifest,
    write_json_atomic,
)
from .suite import Suite, expand

LAUNCHERS = ("local", "submitit")


class LaunchError(ValueError):
    """A run that cannot start (bad launcher, results in the way, changed configuration)."""


@dataclass
class RunSummary:
    """What one ``neumod run`` invocation did."""

    out: str
    total: int
    skipped: list[str] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)  # cell id -> status (cells run)
    errors: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for s in self.statuses.values() if s == status)

    def line(self) -> str:
        return (
            f"{len(self.statuses)} cell(s) run ({self.count('ok')} ok, "
            f"{self.count('diverged')} diverged, {self.count('failed')} failed), "
            f"{len(self.skipped)} skipped as finished, in {self.wall_s:.1f} s -> {self.out}"
        )


def _comparable(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if k not in ("stream_label", "method_label")}


def plan(
    suite: Suite,
    out: Path,
    seeds: Optional[Iterable[int]] = None,
    methods: Optional[Iterable[str]] = None,
    streams: Optional[Iterable[str]] = None,
    resume: bool = False,
    cells: Optional[list[dict]] = None,
) -> tuple[list[dict], list[str]]:
    """The cells to run and the ids skipped as finished.

    Without ``resume``, a folder that already holds results is refused (nothing
    written is overwritten). With it, a finished cell whose stored
    configuration differs from the suite's is refused too.
    """
    if cells is None:
        cells = expand(suite, seeds=seeds, methods=methods, streams=streams)
    todo, skipped, existing = [], [], []
    for cfg in cells:
        r = load_cell(out, cfg["cell_id"])
        if r is None:
            todo.append(cfg)
            continue
        existing.append(cfg["cell_id"])
        if resume and r.get("status") in FINISHED:
            stored = r.get("config", {})
            if _comparable(stored) != _comparable(cfg):
                diff = sorted(k for k in set(stored) | set(cfg) if stored.get(k) != cfg.get(k))
                raise LaunchError(
                    f"cell {cfg['cell_id']} in {out} was run with a different configuration "
                    f"(differs in: {', '.join(diff)}); use another --out"
                )
            skipped.append(cfg["cell_id"])
        else:
            todo.append(cfg)
    if existing and not resume:
        raise LaunchError(
            f"{out} already holds results for {len(existing)} of these cells; "
            "pass --resume to finish the run, or choose another --out"
        )
    return todo, skipped


def _failed_result(cfg: dict, error: str) -> dict:
    from .cell import versions
    from .results import SCHEMA_VERSION

    return {
        "schema_version": SCHEMA_VERSION,
        "cell_id": cfg["cell_id"],
        "status": "failed",
        "error": error,
        "config": cfg,
        "versions": versions(),
        "metrics": {},
        "curves": {},
        "measures": {},
        "timings": {},
    }


def _record(summary: RunSummary, s: dict, log: Callable[[str], None]) -> None:
    summary.statuses[s["cell_id"]] = s["status"]
    if s["status"] != "ok":
        summary.errors[s["cell_id"]] = s.get("error") or ""
        log(f"[{s['status']}] {s['cell_id']}: {s.get('error')}")


def run_suite(
    suite: Suite,
    out: str,
    *,
    seeds: Optional[Iterable[int]] = None,
    methods: Optional[Iterable[str]] = None,
    streams: Optional[Iterable[str]] = None,
    resume: bool = False,
    launcher: str = "local",
    jobs: int = 1,
    cluster: Optional[str] = None,
    submitit_params: Optional[dict] = None,
    root: Optional[str] = None,
    progress: bool = True,
    command: Optional[str] = None,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
    cells: Optional[list[dict]] = None,
) -> RunSummary:
    """Run the suite's cells (not yet finished ones with ``resume``) into ``out``.

    A suite with ``tune`` grids runs its tuning cells first and the reported seeds with
    the picked settings after (:mod:`.tuning`); ``cells`` runs exactly these configs."""
    if launcher not in LAUNCHERS:
        raise LaunchError(f"unknown launcher {launcher!r}; valid launchers: {', '.join(LAUNCHERS)}")
    if jobs < 1:
        raise LaunchError(f"--jobs must be >= 1, got {jobs}")
    # --- tuning (issue 12): grids on the tuning seeds first, then the picks --------------------
    if cells is None:
        kw = dict(
            resume=resume,
            launcher=launcher,
            jobs=jobs,
            cluster=cluster,
            root=root,
            submitit_params=submitit_params,
            progress=progress,
            command=command,
            log=log,
        )
        cells = tuning.tune_then_expand(
            suite, out, lambda tc: run_suite(suite, out, cells=tc, **kw), seeds, methods, streams
        )
    # --- end tuning ------------------------------------------------------------------------------
    out_p = Path(out)
    todo, skipped = plan(suite, out_p, seeds, methods, streams, resume, cells)
    out_p.mkdir(parents=True, exist_ok=True)
    summary = RunSummary(out=str(out_p), total=len(todo) + len(skipped), skipped=skipped)
    inv = {
        "id": uuid.uuid4().hex[:12],
        "command": command or " ".join(sys.argv),
        "launcher": launcher if launcher == "local" else f"submitit:{cluster or 'auto'}",
        "jobs": jobs,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cells_planned": [c["cell_id"] for c in todo],
        "cells_skipped": skipped,
        "status": "running",
    }
    update_manifest(out_p, suite.as_dict(), inv)
    if skipped:
        log(f"resume: {len(skipped)} finished cell(s) skipped")
    t0 = time.perf_counter()
    try:
        if launcher == "local" and jobs == 1:
            _run_sequential(todo, out_p, root, progress, summary, log)
        elif launcher == "local":
            _run_pool(todo, out_p, root, jobs, progress, summary, log)
        else:
            _run_submitit(todo, out_p, root, jobs, cluster, submitit_params, progress, summary, log)
        inv["status"] = "finished"
    except KeyboardInterrupt:
        inv["status"] = "interrupted"
        raise
    finally:
        summary.wall_s = time.perf_counter() - t0
        inv.update(
            finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            wall_s=summary.wall_s,
            statuses=summary.statuses,
        )
        update_manifest(out_p, suite.as_dict(), inv)
    return summary


def _bar(total: int, progress: bool, desc: str = "cells"):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="cell", position=0, disable=not progress)


def _run_sequential(todo, out, root, progress, summary, log) -> None:
    with _bar(len(todo), progress) as bar:
        for cfg in todo:
            bar.set_postfix_str(cfg["cell_id"])
            s = run_cell_to_file(cfg, str(out), root=root, progress=progress)
            _record(summary, s, log)
            bar.update(1)


def _threads(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // jobs)


def _run_pool(todo, out, root, jobs, progress, summary, log) -> None:
    ctx = multiprocessing.get_context("spawn")
    with (
        ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool,
        _bar(len(todo), progress) as bar,
    ):
        futures = {
            pool.submit(run_cell_to_file, cfg, str(out), root, False, _threads(jobs)): cfg
            for cfg in todo
        }
        for fut in as_completed(futures):
            cfg = futures[fut]
            try:
                s = fut.result()
            except Exception as e:  # noqa: BLE001 - a dead worker: record, go on
                s = _crashed(cfg, out, f"worker process failed: {type(e).__name__}: {e}")
            _record(summary, s, log)
            bar.update(1)


def _crashed(cfg: dict, out: Path, error: str) -> dict:
    if load_cell(out, cfg["cell_id"]) is None:
        write_json_atomic(cell_path(out, cfg["cell_id"]), _failed_result(cfg, error))
    return {"cell_id": cfg["cell_id"], "status": "failed", "error": error}


def _run_submitit(todo, out, root, jobs, cluster, params, progress, summary, log) -> None:
    import submitit

    folder = out / "submitit" / "%j"
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    threads = _threads(jobs) if executor.cluster in ("local", "debug") else None
    base = {"timeout_min": 24 * 60, "name": f"neumod-{out.name}"}
    if executor.cluster == "slurm":
        base["slurm_array_parallelism"] = jobs
    base.update(params or {})
    executor.update_parameters(**base)
    if not todo:
        return
    bar = _bar(len(todo), progress)
    try:
        if executor.cluster in ("local", "debug"):
            # the local executor starts every job at once: keep at most `jobs` running
            window = jobs if executor.cluster == "local" else 1
            pending = list(todo)
            running: dict = {}
            while pending or running:
                while pending and len(running) < window:
                    cfg = pending.pop(0)
                    job = executor.submit(run_cell_to_file, cfg, str(out), root, False, threads)
                    running[job] = cfg
                done = next(iter(submitit.helpers.as_completed(list(running), poll_frequency=0.5)))
                cfg = running.pop(done)
                _collect_job(done, cfg, out, summary, log)
                bar.update(1)
        else:
            with executor.batch():
                jobs_ = [
                    executor.submit(run_cell_to_file, cfg, str(out), root, False, threads)
                    for cfg in todo
                ]
            log(f"submitted {len(jobs_)} job(s) to {executor.cluster}: {jobs_[0].job_id} ...")
            by_job = dict(zip(jobs_, todo))
            for job in submitit.helpers.as_completed(jobs_, poll_frequency=10):
                _collect_job(job, by_job[job], out, summary, log)
                bar.update(1)
    finally:
        bar.close()


def _collect_job(job, cfg: dict, out: Path, summary: RunSummary, log) -> None:
    try:
        s = job.result()
    except Exception as e:  # noqa: BLE001 - a crashed job: record, go on
        msg = str(e).strip().splitlines()
        s = _crashed(cfg, out, f"submitit job {job.job_id} failed: {msg[-1] if msg else e}")
    _record(summary, s, log)


def fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    m, sec = divmod(int(round(s)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else (f"{m}m{sec:02d}s" if m else f"{sec}s")
