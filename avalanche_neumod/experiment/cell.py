"""Run one cell (stream x method x seed) and return its result as a JSON-ready dict.

A cell seeds torch, numpy and random; builds the stream, the model (sized from
the stream's ``neumod_info``), the optimizer and the strategy with an
``EvaluationPlugin`` holding Avalanche's accuracy metrics, an
``AccuracyMatrixMetric`` and the metric plugins the suite asks for; trains over the
train stream, evaluating the whole test stream after each experience (the accuracy
matrix: row k = after training experience k, read from the metric's typed row);
stops at a non-finite loss (status "diverged"); and collects metrics, curves, timings
and library versions. With a ``checkpoint`` path it saves its state after each
experience and, when that file exists, continues from it
(``checkpoint.py``): a killed cell resumes where it stopped, with the same result.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import inspect
import math
import os
import platform
import random
import socket
import subprocess
import time
import traceback
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Optional

import avalanche
import numpy as np
import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training.plugins import EvaluationPlugin

from .. import __version__
from ..benchmarks.tensor_data import experience_tensors
from ..evaluation.accuracy_matrix import AccuracyMatrixMetric, accuracy_matrix_metric
from ..records import CellResult, accuracy_kind
from ..training.fast_data import FastDataPlugin
from . import checkpoint as ckpt
from . import measures, registry
from .fingerprint import platform_fingerprint
from .mechanism_record import ActivityRecorder
from .monitor import Diverged, TrainMonitor, attach_pbar
from .run_folder import cell_path, write_json_atomic


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and random (the cell's only sources of randomness on CPU)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def versions() -> dict:
    """Library versions recorded with every result (and the repo commit when known)."""
    out = {
        "avalanche_neumod": __version__,
        "avalanche": getattr(avalanche, "__version__", "?"),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    head = Path(__file__).resolve().parents[2] / ".git"
    try:
        if head.is_file():  # a worktree: ".git" says where its git dir is
            head = Path(head.read_text().split("gitdir:", 1)[1].strip())
        ref = (head / "HEAD").read_text().strip() if head.is_dir() else ""
        if ref.startswith("ref: "):
            p = head / ref[5:]
            common = head / "commondir"
            if not p.exists() and common.exists():
                p = (head / common.read_text().strip()) / ref[5:]
            out["git_commit"] = p.read_text().strip() if p.exists() else ref[5:]
        elif ref:
            out["git_commit"] = ref
    except OSError:
        pass
    dirty = git_dirty(Path(__file__).resolve().parents[2])  # reports name uncommitted code
    if dirty is not None:
        out["git_dirty"] = dirty
    return out


def git_dirty(repo: Path) -> Optional[bool]:
    """Whether the tracked files of ``repo`` differ from its commit (None: not known)."""
    try:
        r = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(r.stdout.strip()) if r.returncode == 0 else None


def stream_info(bm) -> dict:
    """The stream's ``neumod_info``, completed from its data where absent."""
    info = dict(getattr(bm, "neumod_info", None) or {})
    if "input_shape" not in info or "num_classes" not in info:
        ys, shape = [], None
        for exp in bm.train_stream:
            t = experience_tensors(exp)
            shape = tuple(t.x.shape[1:])
            ys.append(int(t.y.max()) + 1)
        info.setdefault("input_shape", list(shape))
        info.setdefault("num_classes", max(ys))
    info["input_shape"] = list(info["input_shape"])
    return info


def _strategy_kwargs(cls, cfg: dict, model, optimizer, evaluator, plugins: list) -> dict:
    t = cfg["train"]
    kwargs = dict(
        model=model,
        optimizer=optimizer,
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=int(t["mb_size"]),
        train_epochs=int(t["epochs"]),
        eval_mb_size=int(t.get("eval_mb_size", 256)),
        device=t.get("device", "cpu"),
        evaluator=evaluator,
        plugins=plugins,
    )
    kwargs.update(cfg["method"]["args"])
    if optimizer is None:  # a method that owns its optimizer (registry.builds_own_optimizer)
        kwargs.pop("optimizer")
    try:
        params = inspect.signature(cls.__init__).parameters
        if "fast_data" in params and not cfg.get("fast_data", True):
            kwargs["fast_data"] = False
    except (TypeError, ValueError):  # pragma: no cover
        pass
    return kwargs


def _iterations(bm, cfg: dict) -> Optional[int]:
    try:
        bs, ep = int(cfg["train"]["mb_size"]), int(cfg["train"]["epochs"])
        return sum(-(-len(e.dataset) // bs) * ep for e in bm.train_stream)
    except Exception:  # pragma: no cover - progress only
        return None


def _build(cfg: dict, bm, info: dict, monitor: TrainMonitor):
    """The cell's strategy (model, optimizer, evaluator, plugins) and optional measures."""
    model = registry.build_model(cfg["model"]["name"], info, cfg["model"]["args"])
    own = registry.builds_own_optimizer(cfg)  # the strategy builds it (its mechanism)
    optimizer = None if own else registry.build_optimizer(cfg["optimizer"], model.parameters())
    active = measures.build(cfg["metrics"], bm, info, cfg)
    with warnings.catch_warnings():  # no loggers is deliberate: metrics are read back
        warnings.filterwarnings("ignore", message="No loggers specified")
        evaluator = EvaluationPlugin(
            accuracy_metrics(experience=True, stream=True),  # Avalanche's names in eval()
            AccuracyMatrixMetric(),  # the cell's accuracy matrix
            *[m for a in active for m in a.metrics()],
            loggers=[],
        )
    plugins: list = []
    if cfg.get("fast_data", True):
        plugins.append(FastDataPlugin())
    plugins.append(monitor)
    plugins.append(ActivityRecorder(seed=int(cfg["seed"])))  # the mechanism's activity
    for a in active:
        plugins.extend(a.plugins())
    cls = registry.resolve(cfg["method"]["target"])
    strategy = cls(**_strategy_kwargs(cls, cfg, model, optimizer, evaluator, plugins))
    for a in active:
        a.attach(strategy)
    return strategy, active


# what a checkpoint keeps of the cell's own progress (besides strategy, monitor, measures)
_PROGRESS = ("matrix", "stream_acc", "train_s", "eval_s", "iters")


def run_cell(
    cfg: dict,
    root: Optional[str] = None,
    progress: bool = False,
    threads: Optional[int] = None,
    checkpoint: Optional[str] = None,
) -> dict:
    """Run the cell configured by ``cfg`` (from :func:`suite.expand`) and return its result
    (a :class:`~avalanche_neumod.records.CellResult`'s ``to_dict()``).

    ``checkpoint``: a file to save the cell's state to after each experience but the
    last, and to continue from when it exists (written for this cell and configuration).

    Nothing of the cell outlives the call: its stream, model and strategy are freed before
    it returns. Avalanche's experiences and streams refer to each other
    (``experience.origin_stream``), so the cell's data sits in reference cycles that only
    a full collection frees, and CPython seldom runs one in a process holding torch and
    Avalanche: cells run one after another in one process (``--jobs 1``) would otherwise
    keep every earlier cell's data (a Permuted MNIST ``lab`` run reached 23.9 GB in 35
    cells). The collection runs once the cell's frame is gone, over the objects made
    during the cell only (:func:`_collecting_cell`): milliseconds, not a full pass.
    """
    with _collecting_cell():
        return _run_cell(cfg, root, progress, threads, checkpoint)


@contextlib.contextmanager
def _collecting_cell() -> Iterator[None]:
    """Collect the cycles made inside the block when it ends.

    The objects alive on entry are moved aside (``gc.freeze``) and put back after
    (``gc.unfreeze``), so the collection looks at the block's objects only; a caller
    that froze objects itself keeps them frozen (a full collection then, which skips them).
    """
    own = gc.get_freeze_count() == 0
    if own:
        gc.freeze()
    try:
        yield
    finally:
        gc.collect()
        if own:
            gc.unfreeze()


def _run_cell(
    cfg: dict,
    root: Optional[str],
    progress: bool,
    threads: Optional[int],
    checkpoint: Optional[str],
) -> dict:
    t_start = time.perf_counter()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if threads:
        torch.set_num_threads(int(threads))
    cfg_in = copy.deepcopy(cfg)
    result = CellResult(
        cell_id=cfg["cell_id"],
        status="running",
        config=copy.deepcopy(cfg),
        versions=versions(),
        host={
            "hostname": socket.gethostname(),
            "platform": platform.platform(),
            "torch_threads": torch.get_num_threads(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
            "fingerprint": platform_fingerprint((cfg.get("train") or {}).get("device", "cpu")),
        },
        started=started,
    )
    seed_everything(int(cfg["seed"]))
    activity = None
    pbar = None
    timings = result.timings
    metrics = result.metrics
    monitor: Optional[TrainMonitor] = None
    strategy = None
    active: list = []
    info: dict = {}
    prog: dict = {k: [] for k in _PROGRESS}
    matrix, stream_acc = prog["matrix"], prog["stream_acc"]
    try:
        t0 = time.perf_counter()
        st = cfg["stream"]
        bm = registry.build_stream(st["name"], st["args"], cfg["seed"], root, st.get("wrappers"))
        info = stream_info(bm)
        accuracy_kind(info)  # a bad declared kind fails the cell now, not after training
        result.stream_info = info
        if cfg["train"]["mb_size"] == "stream":  # the stream's own batch size (NGM streams)
            cfg = copy.deepcopy(cfg)
            cfg["train"]["mb_size"] = int(info.get("train_mb_size") or info["batch_size"])
        refs = ckpt.stream_refs(bm) if checkpoint else {}
        saved = ckpt.load(checkpoint, cfg["cell_id"], cfg_in, refs) if checkpoint else None
        if saved is None:
            monitor = TrainMonitor(log_every=int(cfg["eval"].get("log_every", 10)))
            strategy, active = _build(cfg, bm, info, monitor)
            timings["build_s"] = time.perf_counter() - t0
            metrics["n_parameters"] = sum(p.numel() for p in strategy.model.parameters())
            metrics["train_mb_size"] = int(cfg["train"]["mb_size"])
            done = 0
        else:  # continue after the last experience the checkpoint finished
            strategy, monitor, active = saved["strategy"], saved["monitor"], saved["active"]
            prog = saved["progress"]
            matrix, stream_acc = prog["matrix"], prog["stream_acc"]
            timings["build_s"] = saved["build_s"]
            metrics.update(saved["metrics"])
            done = int(saved["done"])
            result.resumed = {"from_experience": done, "checkpoint": str(checkpoint)}
        evaluator = strategy.evaluator
        acc = accuracy_matrix_metric(evaluator)
        if acc is None:  # a checkpoint written before the metric: it only reads evaluations
            acc = AccuracyMatrixMetric()
            evaluator.metrics.append(acc)
        # the mechanism's activity (a plugin of the strategy, so checkpoints keep it)
        activity = next((p for p in strategy.plugins if isinstance(p, ActivityRecorder)), None)

        if progress:
            pbar = attach_pbar(monitor, _iterations(bm, cfg), cfg["cell_id"])
            pbar.update(monitor.iteration)
        n_test = len(bm.test_stream)
        every = bool(cfg["eval"].get("every_experience", True))
        n_train = len(bm.train_stream)
        for k, exp in enumerate(bm.train_stream):
            if k < done:
                continue
            it0 = monitor.iteration
            t0 = time.perf_counter()
            strategy.train(exp)
            prog["train_s"].append(time.perf_counter() - t0)
            prog["iters"].append(monitor.iteration - it0)
            if every or k == n_train - 1:
                t0 = time.perf_counter()
                strategy.eval(bm.test_stream)
                prog["eval_s"].append(time.perf_counter() - t0)
                matrix.append(acc.last.as_list(n_test))
                stream_acc.append(acc.last.stream_accuracy)
            if checkpoint and k < n_train - 1:
                monitor.pbar = None  # a progress bar is not state
                state = {
                    "strategy": strategy,
                    "monitor": monitor,
                    "active": active,
                    "progress": prog,
                    "build_s": timings["build_s"],
                    "metrics": dict(metrics),
                    "done": k + 1,
                }
                if not ckpt.save(checkpoint, cfg["cell_id"], cfg_in, state, refs):
                    checkpoint = None
                monitor.pbar = pbar
        # a mechanism that broke the run (NGM-SGD's gain collapse): trained to the end, but
        # recorded apart from the finished cells
        broken = measures.failure(strategy)
        result.status = "collapsed" if broken is not None else "ok"
        if broken is not None:
            result.collapsed = broken
            result.error = f"mechanism failure: {broken.get('reason')}"
    except Diverged as d:
        result.status = "diverged"
        result.diverged = {"experience": d.experience, "iteration": d.iteration, "loss": d.loss}
        result.error = str(d)
    except Exception as e:  # noqa: BLE001 - recorded, the suite goes on
        result.status = "failed"
        result.error = f"{type(e).__name__}: {e}"
        result.traceback = traceback.format_exc()
    finally:
        if pbar is not None:
            pbar.close()
    if result.status != "failed":
        metrics.update(
            summarise(matrix, stream_acc, info, prog["iters"], complete=result.status == "ok")
        )
        rec = info.get("recurring_test_experiences")
        if rec and matrix:
            j = int(rec[0])
            col = [row[j] for row in matrix]
            metrics["recurring"] = {
                "test_experience": j,
                "after_each": col,
                "train_order": info.get("train_order"),
                **({"final": col[-1]} if result.status == "ok" else {}),
            }
        timings["train_s"] = prog["train_s"]
        timings["eval_s"] = prog["eval_s"]
        result.curves["train"] = monitor.curves()
        if activity is not None:
            result.measures.other["activity"] = activity.to_dict()
        hist = measures.histories(strategy)
        if hist:
            result.measures.other["history"] = hist
        for a in active:
            try:
                measures.store(result.measures, a.name, a.collect(strategy, result))
            except Exception as e:  # noqa: BLE001
                if result.status == "ok":
                    result.status = "failed"
                    result.error = f"collecting {a.name}: {type(e).__name__}: {e}"
                    result.traceback = traceback.format_exc()
    timings["total_s"] = time.perf_counter() - t_start
    result.finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return result.to_dict()


def summarise(
    matrix: list[list[float]],
    stream_acc: list,
    info: dict,
    iters: list[int],
    complete: bool,
) -> dict:
    """Accuracy summaries from the accuracy matrix.

    ``final_accuracy``: the last row (accuracy on every test experience at the
    end); ``accuracy_at_end``: each training experience's task right after that training
    (the diagonal, or ``info["train_order"]`` on a recurring stream: the memorisation
    streams' reading); ``avg_accuracy`` is the one the
    stream calls for (:func:`accuracy_kind`).
    """
    out: dict = {
        "accuracy_matrix": matrix,
        "stream_accuracy": stream_acc,
        "iterations_per_experience": iters,
        "n_iterations": int(sum(iters)),
    }
    if not matrix:
        return out
    # row k scored on the test experience of the task trained at k (a recurring stream
    # lists its repeated task once: ``train_order`` maps train experiences to tests)
    order = info.get("train_order") or range(len(matrix))
    diag = [matrix[k][order[k]] for k in range(len(matrix)) if order[k] < len(matrix[k])]
    out["accuracy_at_end"] = diag
    out["avg_accuracy_at_end"] = float(np.mean(diag)) if diag else math.nan
    if complete:
        last = matrix[-1]
        out["final_accuracy"] = last
        out["avg_final_accuracy"] = float(np.nanmean(last))
        kind = accuracy_kind(info)
        out["avg_accuracy_kind"] = kind
        out["avg_accuracy"] = (
            out["avg_accuracy_at_end"] if kind == "end_of_task" else out["avg_final_accuracy"]
        )
    return out


def run_cell_to_file(
    cfg: dict,
    run_dir: str,
    root: Optional[str] = None,
    progress: bool = False,
    threads: Optional[int] = None,
    checkpoint: bool = True,
) -> dict:
    """Run the cell and write its JSON atomically into ``run_dir``; return a short summary.

    This is the function the launchers send to worker processes and to submitit. With
    ``checkpoint``, the cell checkpoints into ``run_dir/checkpoints/`` and continues
    from its checkpoint there; the checkpoint is removed once the result is written.
    """
    path = ckpt.ckpt_path(run_dir, cfg["cell_id"])
    result = run_cell(
        cfg,
        root=root,
        progress=progress,
        threads=threads,
        checkpoint=str(path) if checkpoint else None,
    )
    write_json_atomic(cell_path(run_dir, cfg["cell_id"]), result)
    ckpt.remove(path)  # also one left by an earlier run when checkpoints are off now
    return {
        "cell_id": cfg["cell_id"],
        "status": result["status"],
        "error": result["error"],
        "total_s": result["timings"].get("total_s"),
    }
