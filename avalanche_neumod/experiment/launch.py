"""Launch a suite's cells: in this process, in parallel local processes, or via submitit.

Every cell writes its own result file (``cell.run_cell_to_file``), so all
launchers land results in the same ``runs/NAME`` folder, and ``--resume``
skips cells whose file says "ok" or "diverged" whichever launcher wrote it.

- ``local`` with ``jobs=1``: cells run one after the other in this process,
  with a progress bar over cells and one over the current cell's iterations.
- ``local`` with ``jobs=N``: ``concurrent.futures.ProcessPoolExecutor`` with
  ``spawn`` processes, one fresh process per cell, each with ``cpu_count // N`` torch threads.
- ``submitit``: ``submitit.AutoExecutor``: SLURM on a cluster (one array job,
  at most ``jobs`` cells running at once), else its local executor; ``cluster``
  picks one explicitly (``"slurm"``, ``"local"``, ``"debug"``: in-process).

A run holds the folder's lock (``lock.RunLock``) from planning to the end, marks
invocations left ``running`` by a killed run as ``interrupted``, and refuses to
write into a folder holding cells of another suite or configuration unless
``force_mixed``. Cells that fail (also by raising) are recorded ``failed`` and
the suite goes on, whatever the launcher.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Optional

from tqdm.auto import tqdm

from ..records import SCHEMA_VERSION
from . import tuning
from .cell import run_cell_to_file, versions
from .lock import RunLock, RunLocked, holder_alive, read_lock
from .run_folder import (
    FINISHED,
    cell_files,
    cell_id_of,
    cell_path,
    damaged_cell,
    load_cell,
    load_manifest,
    load_results,
    read_json,
    set_aside_damaged_manifest,
    update_manifest,
    write_json_atomic,
)
from .sharing import CellPool, adopt, code_of
from .suite import Suite, SuiteError, expand

LAUNCHERS = ("local", "submitit")


class LaunchError(ValueError):
    """A run that cannot start (bad launcher, results in the way, changed configuration)."""


@dataclass
class RunSummary:
    """What one ``neumod run`` invocation did."""

    out: str
    total: int
    skipped: list[str] = field(default_factory=list)
    shared: dict[str, str] = field(default_factory=dict)  # cell id -> the file it was adopted from
    statuses: dict[str, str] = field(default_factory=dict)  # cell id -> status (cells run)
    errors: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for s in self.statuses.values() if s == status)

    def line(self) -> str:
        return (
            f"{len(self.statuses)} cell(s) run ({self.count('ok')} ok, "
            f"{self.count('diverged')} diverged, {self.count('failed')} failed"
            + (f", {self.count('collapsed')} collapsed" if self.count("collapsed") else "")
            + "), "
            f"{len(self.skipped)} skipped as finished, "
            + (f"{len(self.shared)} adopted from other runs, " if self.shared else "")
            + f"in {self.wall_s:.1f} s -> {self.out}"
        )


class CellJob:
    """``run_cell_to_file`` as a callable the launchers send to workers and submitit.

    Submitit's checkpointing protocol: on preemption or timeout (SLURM's signal)
    submitit calls :meth:`checkpoint` and requeues what it returns, the same call; the
    requeued cell continues from the checkpoint it saved at its last experience boundary.
    """

    def __init__(self, checkpoints: bool = True):
        self.checkpoints = checkpoints

    def __call__(self, cfg: dict, run_dir: str, root=None, progress=False, threads=None):
        return run_cell_to_file(cfg, run_dir, root, progress, threads, self.checkpoints)

    def checkpoint(self, *args, **kwargs):
        import submitit  # only under submitit (slow to import; a local run never needs it)

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def _comparable(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if k not in ("stream_label", "method_label")}


def _diff(a: dict, b: dict) -> list[str]:
    a, b = _comparable(a), _comparable(b)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _suite_cell(suite: Suite, cfg: dict, tuning_ids: dict) -> Optional[dict]:
    """What this suite gives the stored cell ``cfg``: its tuning cell (by id; a later
    round's cell, a kept point on another seed or an extended grid's point, rebuilt from
    its stored point), or the reported cell with the stored grid point applied (None: not
    one of the suite's)."""
    seed, mk, sk = int(cfg["seed"]), cfg["method_key"], cfg["stream_key"]
    t = cfg.get("tuning")
    if t is not None:
        if cfg["cell_id"] in tuning_ids:
            return tuning_ids[cfg["cell_id"]]
        point = tuning.in_grid_order(suite, mk, t.get("point") or {})
        if seed not in tuning.tune_settings(suite.tune)["seeds"] or not tuning.admissible(
            suite, mk, point
        ):
            return None
        (base,) = expand(suite, seeds=[seed], methods=[mk], streams=[sk])
        return tuning.make_cell(base, point, t.get("index"))
    (mine,) = expand(suite, seeds=[seed], methods=[mk], streams=[sk])
    point = (cfg.get("tuned") or {}).get("point")
    if point is not None:
        if not tuning.admissible(suite, mk, point):
            return None
        mine = tuning.apply(mine, point)
        mine["tuned"] = {"point": point}
    return mine


def foreign_cells(suite: Suite, out: Path, redo: Iterable[str] = ()) -> list[tuple[str, str]]:
    """The cells in ``out`` that are not this suite's (another suite or preset, a key the
    suite lacks, or a configuration that differs from what the suite gives that cell):
    ``(cell id, why)`` pairs. Damaged files are left out (they are redone or reported),
    and so are failed cells in ``redo`` (this run replaces them)."""
    redo = set(redo)
    found = []
    tuning_ids = {c["cell_id"]: c for c in tuning.tuning_cells(suite)}
    for p in cell_files(out):
        cid = cell_id_of(p)
        try:
            r = read_json(p)
            cfg = r["config"]
            sk, mk, _ = cfg["stream_key"], cfg["method_key"], int(cfg["seed"])
        except (ValueError, KeyError, TypeError):
            continue
        if cid in redo and r.get("status") not in FINISHED:
            continue
        if (cfg.get("suite"), cfg.get("preset")) != (suite.name, suite.preset):
            found.append((cid, f"suite {cfg.get('suite')!r} preset {cfg.get('preset')!r}"))
            continue
        if sk not in suite.streams or mk not in suite.methods:
            found.append((cid, f"stream {sk!r} x method {mk!r} is not in this suite"))
            continue
        try:
            mine = _suite_cell(suite, cfg, tuning_ids)
        except SuiteError as e:
            found.append((cid, str(e)))
            continue
        if mine is None:
            found.append((cid, "a tuning cell or grid point this suite does not declare"))
            continue
        diff = _diff(cfg, mine)
        if diff:
            found.append((cid, f"a different configuration (differs in: {', '.join(diff)})"))
    return found


def plan(
    suite: Suite,
    out: Path,
    seeds: Optional[Iterable[int]] = None,
    methods: Optional[Iterable[str]] = None,
    streams: Optional[Iterable[str]] = None,
    resume: bool = False,
    force_mixed: bool = False,
    log: Callable[[str], None] = lambda m: None,
    cells: Optional[list[dict]] = None,
) -> tuple[list[dict], list[str]]:
    """The cells to run and the ids skipped as finished.

    Without ``resume``, a folder that already holds results is refused (nothing
    written is overwritten). With it, a finished cell whose stored
    configuration differs from the suite's is refused too. A folder holding cells
    of another suite or configuration is refused unless ``force_mixed`` (never
    overwriting one). A damaged result file is named and its cell redone.
    """
    if cells is None:
        cells = expand(suite, seeds=seeds, methods=methods, streams=streams)
    todo, skipped, existing = [], [], []
    kept: list[dict] = []  # the finished cells' records
    for cfg in cells:
        r = load_cell(out, cfg["cell_id"])
        if r is None:
            bad = damaged_cell(out, cfg["cell_id"])
            if bad is not None:
                log(f"{bad}: the cell will be run again")
            todo.append(cfg)
            continue
        existing.append(cfg["cell_id"])
        if resume and r.get("status") in FINISHED:
            stored = r.get("config", {})
            if _comparable(stored) != _comparable(cfg):
                diff = _diff(stored, cfg)
                raise LaunchError(
                    f"cell {cfg['cell_id']} in {out} was run with a different configuration "
                    f"(differs in: {', '.join(diff)}); use another --out"
                )
            skipped.append(cfg["cell_id"])
            kept.append(r)
        else:
            todo.append(cfg)
    if existing and not resume:
        raise LaunchError(
            f"{out} already holds results for {len(existing)} of these cells; "
            "pass --resume to finish the run, or choose another --out"
        )
    foreign = foreign_cells(suite, out, [c["cell_id"] for c in todo])
    if foreign and not force_mixed:
        cid, why = foreign[0]
        raise LaunchError(
            f"{out} holds {len(foreign)} cell(s) that are not suite {suite.name!r} "
            f"(preset {suite.preset!r}) as loaded now, e.g. {cid}: {why}. Use another --out, "
            "or pass --force-mixed to add this suite's cells next to them (the report then "
            "lists each suite's cells apart)"
        )
    if foreign:
        log(f"--force-mixed: {out} keeps {len(foreign)} cell(s) of another suite/configuration")
    _log_other_code(kept, out, log)
    return todo, skipped


def _by_other_code(records: Iterable[dict]) -> tuple[str, dict[str, int]]:
    """This process's code, and how many of ``records`` each other code made."""
    here = code_of(versions())
    other: dict[str, int] = {}
    for r in records:
        code = code_of(r.get("versions") or {})
        if code != here:
            other[code] = other.get(code, 0) + 1
    return here, other


def other_code(out: Path) -> dict[str, int]:
    """Finished cells of run folder ``out`` made by other code than this process's (another
    git commit or package version): ``{code: count}``, empty when all are current."""
    return _by_other_code(r for r in load_results(out) if r.get("status") in FINISHED)[1]


def _log_other_code(kept: list[dict], out: Path, log: Callable[[str], None]) -> None:
    """Say when finished cells that ``--resume`` keeps were made by other code than this
    run's: a default changed since would make them compute something else (the report
    names every commit; deleting a cell's file reruns it)."""
    here, other = _by_other_code(kept)
    if other:
        listed = ", ".join(f"{n} at {code}" for code, n in sorted(other.items()))
        log(
            f"resume: {sum(other.values())} kept cell(s) were made by other code than this "
            f"run ({here}): {listed}. They are not rerun; delete their files from "
            f"{out / 'cells'} to run them at this code"
        )


def _failed_result(cfg: dict, error: str) -> dict:
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
    force_mixed: bool = False,
    launcher: str = "local",
    jobs: int = 1,
    cluster: Optional[str] = None,
    submitit_params: Optional[dict] = None,
    root: Optional[str] = None,
    progress: bool = True,
    command: Optional[str] = None,
    checkpoints: bool = True,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
    cells: Optional[list[dict]] = None,
    share: Iterable[str] = (),
) -> RunSummary:
    """Run the suite's cells (not yet finished ones with ``resume``) into ``out``.

    The folder is locked while a batch of cells runs (a second run on it is refused,
    naming this one). ``checkpoints``: cells save their state at experience boundaries and
    a resumed cell continues from there (``cell.run_cell``). A suite with ``tune`` grids
    runs its tuning cells first, round by round as :class:`.tuning.TuningRounds` plans
    them, and the reported seeds with the picked settings after; ``cells`` runs exactly
    these configs (no tuning). The summary is that of the reported cells. ``share``: other
    run folders whose finished cells, made by this code, are adopted instead of trained
    again when they train exactly what a cell of this run trains (:mod:`.sharing`), in
    every batch (tuning rounds too).
    """
    if launcher not in LAUNCHERS:
        raise LaunchError(f"unknown launcher {launcher!r}; valid launchers: {', '.join(LAUNCHERS)}")
    if jobs < 1:
        raise LaunchError(f"--jobs must be >= 1, got {jobs}")
    launch = Launch(
        suite=suite,
        out=Path(out),
        resume=resume,
        force_mixed=force_mixed,
        launcher=launcher,
        jobs=jobs,
        cluster=cluster,
        submitit_params=submitit_params,
        root=root,
        progress=progress,
        command=command or " ".join(sys.argv),
        checkpoints=checkpoints,
        log=log,
        share=tuple(share),
    )
    if cells is None:
        cells = _tune(launch, tuning.TuningRounds(suite, methods, streams), seeds)
    return launch.run(cells, seeds, methods, streams)


def _tune(
    launch: Launch, rounds: tuning.TuningRounds, seeds: Optional[Iterable[int]]
) -> Optional[list[dict]]:
    """Run the tuning rounds ``rounds`` plans, one batch each, until every pair has its
    pick; write ``tuning.json`` and return the reported cells with the picks applied
    (None when the suite tunes nothing)."""
    cells = rounds.first_round()
    if not cells:
        return None
    results: dict[str, dict] = {}
    while cells:
        launch.run(cells)
        missing = []
        for c in cells:
            r = load_cell(launch.out, c["cell_id"])
            if r is None:
                missing.append(c["cell_id"])
            else:
                results[c["cell_id"]] = r
        if missing:
            raise tuning.TuningError(
                f"tuning cells without a result in {launch.out}: {', '.join(missing[:5])}"
            )
        cells = rounds.next_round(list(results.values()))
    choices = rounds.choices(list(results.values()))
    write_json_atomic(launch.out / tuning.TUNING_FILE, rounds.record(choices))
    return rounds.reported_cells(choices, seeds)


@dataclass
class Launch:
    """How one ``neumod run`` runs its batches of cells (the settings of :func:`run_suite`);
    :meth:`run` runs one batch: a tuning round, or the reported cells."""

    suite: Suite
    out: Path
    resume: bool
    force_mixed: bool
    launcher: str
    jobs: int
    cluster: Optional[str]
    submitit_params: Optional[dict]
    root: Optional[str]
    progress: bool
    command: str
    checkpoints: bool
    log: Callable[[str], None]
    share: tuple = ()  # other run folders whose finished cells may be adopted

    def run(
        self,
        cells: Optional[list[dict]],
        seeds: Optional[Iterable[int]] = None,
        methods: Optional[Iterable[str]] = None,
        streams: Optional[Iterable[str]] = None,
    ) -> RunSummary:
        """Run ``cells`` (None: the suite's expanded cells) under the folder's lock, as one
        invocation of the manifest."""
        suite, out_p, log = self.suite, self.out, self.log
        inv_id = uuid.uuid4().hex[:12]
        created = not out_p.exists()
        out_p.mkdir(parents=True, exist_ok=True)
        try:
            lock = RunLock(out_p, inv_id, self.command, log=log).acquire()
        except RunLocked as e:
            raise LaunchError(str(e)) from e
        try:
            mark_interrupted(out_p, log)
            todo, skipped = plan(
                suite, out_p, seeds, methods, streams, self.resume, self.force_mixed, log, cells
            )
            shared: dict[str, str] = {}
            if self.share:
                pool = CellPool.scan(self.share, code_of(versions()), exclude=out_p)
                shared = adopt(pool, todo, out_p, log)
                todo = [c for c in todo if c["cell_id"] not in shared]
            summary = RunSummary(
                out=str(out_p), total=len(todo) + len(skipped) + len(shared), skipped=skipped,
                shared=shared,
            )  # fmt: skip
            launcher = self.launcher
            inv = {
                "id": inv_id,
                "command": self.command,
                "suite": {"name": suite.name, "preset": suite.preset},
                "launcher": launcher
                if launcher == "local"
                else f"submitit:{self.cluster or 'auto'}",
                "jobs": self.jobs,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": _now(),
                "cells_planned": [c["cell_id"] for c in todo],
                "cells_skipped": skipped,
                "cells_shared": shared,
                "force_mixed": bool(self.force_mixed),
                "status": "running",
                "statuses": summary.statuses,
            }
            update_manifest(out_p, suite.as_dict(), inv)
            if skipped:
                log(f"resume: {len(skipped)} finished cell(s) skipped")
            t0 = time.perf_counter()

            def on_cell() -> None:  # the manifest says what finished, even if this run is killed
                inv["wall_s"] = time.perf_counter() - t0
                update_manifest(out_p, suite.as_dict(), inv)

            job = CellJob(checkpoints=self.checkpoints)
            root, progress, jobs = self.root, self.progress, self.jobs
            try:
                if launcher == "local" and jobs == 1:
                    _run_sequential(job, todo, out_p, root, progress, summary, log, on_cell)
                elif launcher == "local":
                    _run_pool(job, todo, out_p, root, jobs, progress, summary, log, on_cell)
                else:
                    params = self.submitit_params
                    _run_submitit(job, todo, out_p, root, jobs, self.cluster, params, progress,
                                  summary, log, on_cell)  # fmt: skip
                inv["status"] = "finished"
            except KeyboardInterrupt:
                inv["status"] = "interrupted"
                raise
            finally:
                summary.wall_s = time.perf_counter() - t0
                inv.update(finished=_now(), wall_s=summary.wall_s, statuses=summary.statuses)
                update_manifest(out_p, suite.as_dict(), inv)
            return summary
        finally:
            lock.release()
            if created and not any(out_p.iterdir()):  # refused before writing anything
                out_p.rmdir()


def mark_interrupted(out: Path, log: Callable[[str], None] = lambda m: None) -> list[str]:
    """Invocations the manifest says are ``running`` whose process is gone (the caller
    holds the lock, or the lock is stale): marked ``interrupted``, with the statuses of
    the cells they finished (read from the cell files). Their ids."""
    set_aside_damaged_manifest(out)
    man = load_manifest(out)
    if not man:
        return []
    holder = read_lock(out) or {}
    marked = []
    for inv in man.get("invocations") or []:
        if inv.get("status") != "running":
            continue
        if holder.get("invocation") == inv.get("id") and holder_alive(holder) is not False:
            continue  # still running (or on a host this one cannot check)
        inv["status"] = "interrupted"
        inv["interrupted_detected"] = _now()
        inv["statuses"] = finished_statuses(out, inv.get("cells_planned") or [])
        marked.append(inv["id"])
        update_manifest(out, man.get("suite") or {}, inv)
        log(
            f"invocation {inv['id']} ({inv.get('command', '?')}) was killed: marked interrupted, "
            f"{len(inv['statuses'])} of its {len(inv.get('cells_planned') or [])} cell(s) finished"
        )
    return marked


def finished_statuses(out: Path, ids: Iterable[str]) -> dict[str, str]:
    """Cell id -> status of the cells among ``ids`` that have a result file."""
    out_d = {}
    for cid in ids:
        r = load_cell(out, cid)
        if r is not None and r.get("status"):
            out_d[cid] = r["status"]
    return out_d


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _bar(total: int, progress: bool, desc: str = "cells"):
    return tqdm(total=total, desc=desc, unit="cell", position=0, disable=not progress)


def _run_sequential(job, todo, out, root, progress, summary, log, on_cell) -> None:
    with _bar(len(todo), progress) as bar:
        for cfg in todo:
            bar.set_postfix_str(cfg["cell_id"])
            try:
                s = job(cfg, str(out), root=root, progress=progress)
            except Exception as e:  # noqa: BLE001 - a cell that raised: record, go on
                s = _crashed(cfg, out, f"{type(e).__name__}: {e}")
            _record(summary, s, log)
            on_cell()
            bar.update(1)


def _threads(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // jobs)


def _run_pool(job, todo, out, root, jobs, progress, summary, log, on_cell) -> None:
    """Each cell in a fresh worker process (``max_tasks_per_child=1``): memory a cell's
    libraries keep (allocator arenas, caches) cannot pile up over a long suite (a worker
    reusing itself reached 9 GB after ~10 `lab` cells, before cells collected their own
    reference cycles: ``cell.run_cell``), and no cell sees another's state."""
    ctx = multiprocessing.get_context("spawn")
    with (
        ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, max_tasks_per_child=1) as pool,
        _bar(len(todo), progress) as bar,
    ):
        futures = {
            pool.submit(job, cfg, str(out), root, False, _threads(jobs)): cfg for cfg in todo
        }
        for fut in as_completed(futures):
            cfg = futures[fut]
            try:
                s = fut.result()
            except Exception as e:  # noqa: BLE001 - a dead worker: record, go on
                s = _crashed(cfg, out, f"worker process failed: {type(e).__name__}: {e}")
            _record(summary, s, log)
            on_cell()
            bar.update(1)


def _crashed(cfg: dict, out: Path, error: str) -> dict:
    if load_cell(out, cfg["cell_id"]) is None:
        write_json_atomic(cell_path(out, cfg["cell_id"]), _failed_result(cfg, error))
    return {"cell_id": cfg["cell_id"], "status": "failed", "error": error}


def _run_submitit(job, todo, out, root, jobs, cluster, params, progress, summary, log, on_cell):
    """Cells as submitit jobs. ``job`` is a :class:`cell.CellJob`: on preemption or timeout
    submitit calls its ``checkpoint`` and requeues the cell, which resumes from its
    checkpoint file."""
    import submitit  # only for this launcher (slow to import; a local run never needs it)

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
                    sub = executor.submit(job, cfg, str(out), root, False, threads)
                    running[sub] = cfg
                done = next(iter(submitit.helpers.as_completed(list(running), poll_frequency=0.5)))
                cfg = running.pop(done)
                _collect_job(done, cfg, out, summary, log)
                on_cell()
                bar.update(1)
        else:
            with executor.batch():
                jobs_ = [executor.submit(job, cfg, str(out), root, False, threads) for cfg in todo]
            log(f"submitted {len(jobs_)} job(s) to {executor.cluster}: {jobs_[0].job_id} ...")
            by_job = dict(zip(jobs_, todo))
            for done in submitit.helpers.as_completed(jobs_, poll_frequency=10):
                _collect_job(done, by_job[done], out, summary, log)
                on_cell()
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
