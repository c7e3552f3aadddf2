"""Knowledge transfer and learning speed: LCA_0, LCA_F, LCA_B, FKT_b, BKT_b (docs/metrics.md).

Accuracy arrays, shape ``(T, beta + 1)``, row ``k`` = experience ``k``, column
``b`` = batches trained on it (accuracies in [0, 1]; ``None``/NaN where unused):

- ``A_main[k][b]`` = A^{k-1}_{b,k}: the main run during its first ``beta`` batches
  of experience ``k`` (row 0 starts from the initial model; the formulas use rows
  1..T-1);
- ``A_final[k][b]`` = A^{T-1}_{b,k}: a probe from the final state trained on old
  experience ``k`` (rows 0..T-2);
- ``A_ref[k][b]`` = A^0_{b,k}: a reference probe (``reference="init"``: from the
  initial state, i.e. a fresh model with the same method; ``"first"``: from the
  state after experience 0), every row.

NeuMoSync's formulas (papers/neumosync_excerpt.txt, "Metrics")::

    LCA_F  = 1/(beta+1) sum_b 1/(T-1) sum_{k=1..T-1} A^{k-1}_{b,k}
    LCA_B  = 1/(beta+1) sum_b 1/(T-1) sum_{k=0..T-2} A^{T-1}_{b,k}
    FKT_b  = 1/(T-1) sum_{k=1..T-1} (A^{k-1}_{b,k} - A^0_{b,k})
    BKT_b  = 1/(T-1) sum_{k=0..T-2} (A^{T-1}_{b,k} - A^0_{b,k})
    LCA_F  = LCA_0^F + mean_b FKT_b,   LCA_B = LCA_0^B + mean_b BKT_b

where LCA_0^F and LCA_0^B average A^0 over the same ``k`` as each side. The
table's single ``LCA_0`` column is the reference's learning-curve area over all
``T`` experiences (decided here; ``LCA_0_F`` and ``LCA_0_B`` are reported too).
``FKT_half``/``BKT_half`` are at ``b = beta // 2``.

Repeated tasks (``benchmarks.recurring``; decided here): ``tasks[k]`` = the task
(test experience) trained in training experience ``k``, ``k = 0..K-1``. ``A_main``
has one row per *training experience* (``A_main[k]`` on task ``tasks[k]``'s test
set), ``A_final`` and ``A_ref`` one row per *task*. Forward: every training
occurrence ``k = 1..K-1`` against its task's reference,
``FKT_b = 1/(K-1) sum_k (A^{k-1}_{b,k} - A^0_{b,tasks[k]})`` (a task trained twice
counts twice); backward: the distinct trained tasks except the last experience's
task, ``Bk``, ``BKT_b = 1/|Bk| sum_{i in Bk} (A^{K-1}_{b,i} - A^0_{b,i})``; LCA_F,
LCA_0_F, LCA_B, LCA_0_B average over the same rows, so the identities hold;
``LCA_0`` averages every trained task. With ``tasks[k] = k`` (no repeats,
``tasks=None``) these are the formulas above.
"""

from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

from ..argument_rules import checked, integer
from ..observer import Observer
from .probes import preserved_rng, run_probe, snapshot_strategy
from .renamed import resolve
from .subset_eval import ForwardFn, SubsetEvaluator, experience_subsets
from .task_identity import TaskIndex

REFERENCES = ("init", "first")
SIDES = ("all", "forward", "backward")


# --------------------------------------------------------------------------- pure functions


def _arr(A, name: str) -> np.ndarray:
    a = np.array([[np.nan if v is None else v for v in row] for row in A], dtype=float)
    if a.ndim != 2 or a.shape[0] < 2 or a.shape[1] < 2:
        raise ValueError(
            f"{name} must be a (T, beta+1) array with T >= 2 experiences and beta >= 1, "
            f"got shape {a.shape}"
        )
    return a


def _rows(a: np.ndarray, rows: range, name: str) -> np.ndarray:
    sub = a[list(rows)]
    if np.isnan(sub).any():
        raise ValueError(f"{name} has missing values in rows {list(rows)}")
    return sub


def _fwd(T: int) -> range:
    return range(1, T)


def _bwd(T: int) -> range:
    return range(0, T - 1)


def _same_shape(*arrs: np.ndarray) -> None:
    if len({a.shape for a in arrs}) != 1:
        raise ValueError(f"accuracy arrays differ in shape: {[a.shape for a in arrs]}")


def _task_list(tasks: Optional[Sequence[int]], n_main: int, n_tasks: int) -> list[int]:
    """``tasks[k]`` for the ``n_main`` training experiences; default ``k`` (no repeats)."""
    if tasks is None:
        if n_main != n_tasks:
            raise ValueError(
                f"{n_main} training experiences for {n_tasks} tasks: pass tasks= (the task of "
                "each training experience, e.g. KnowledgeTransferMetric.to_dict()['tasks'])"
            )
        return list(range(n_main))
    t = [int(v) for v in tasks]
    if len(t) != n_main or any(not 0 <= v < n_tasks for v in t):
        raise ValueError(
            f"tasks must give a task in 0..{n_tasks - 1} for each of the {n_main} training "
            f"experiences, got {t}"
        )
    return t


def _bwd_tasks(t: list[int]) -> list[int]:
    """Distinct trained tasks except the last training experience's (``0..T-2``)."""
    return sorted(set(t) - {t[-1]})


def _pair(a: np.ndarray, r: np.ndarray) -> None:
    if a.shape[1] != r.shape[1]:
        raise ValueError(f"accuracy arrays differ in beta + 1: {a.shape[1]} vs {r.shape[1]}")


def _check_b(b: int, a: np.ndarray) -> int:
    beta = a.shape[1] - 1
    if int(b) != b or not 0 <= b <= beta:
        raise ValueError(f"b must be an integer in [0, {beta}], got {b}")
    return int(b)


def lca_forward(A_main) -> float:
    """LCA_F: mean of A^{k-1}_{b,k} over b = 0..beta and k = 1..T-1."""
    a = _arr(A_main, "A_main")
    return float(_rows(a, _fwd(len(a)), "A_main").mean())


def lca_backward(A_final, tasks: Optional[Sequence[int]] = None) -> float:
    """LCA_B: mean of A^{T-1}_{b,k} over b = 0..beta and k = 0..T-2 (with ``tasks``: the
    distinct trained tasks except the last experience's)."""
    a = _arr(A_final, "A_final")
    rows = _bwd(len(a)) if tasks is None else _bwd_tasks(_task_list(tasks, len(tasks), len(a)))
    return float(_rows(a, rows, "A_final").mean())


def lca_zero(A_ref, side: str = "all", tasks: Optional[Sequence[int]] = None) -> float:
    """LCA_0: mean of A^0_{b,k} over b and k in 0..T-1 (``"all"``), 1..T-1 (``"forward"``)
    or 0..T-2 (``"backward"``). With ``tasks``: every trained task, ``tasks[1:]`` (with
    multiplicity) or the backward tasks."""
    if side not in SIDES:
        raise ValueError(f"unknown side {side!r}; valid: {', '.join(SIDES)}")
    a = _arr(A_ref, "A_ref")
    T = len(a)
    if tasks is None:
        rows = {"all": range(T), "forward": _fwd(T), "backward": _bwd(T)}[side]
    else:
        t = _task_list(tasks, len(tasks), T)
        rows = {"all": sorted(set(t)), "forward": t[1:], "backward": _bwd_tasks(t)}[side]
    return float(_rows(a, rows, "A_ref").mean())


def fkt(A_main, A_ref, b: int, tasks: Optional[Sequence[int]] = None) -> float:
    """FKT_b = 1/(T-1) sum_{k=1..T-1} (A^{k-1}_{b,k} - A^0_{b,k}); with ``tasks``,
    ``1/(K-1) sum_{k=1..K-1} (A^{k-1}_{b,k} - A^0_{b,tasks[k]})``."""
    m, r = _arr(A_main, "A_main"), _arr(A_ref, "A_ref")
    _pair(m, r)
    t = _task_list(tasks, len(m), len(r))
    b = _check_b(b, m)
    ks = _fwd(len(m))
    main = _rows(m, ks, "A_main")[:, b]
    ref = _rows(r, [t[k] for k in ks], "A_ref")[:, b]
    return float((main - ref).mean())


def bkt(A_final, A_ref, b: int, tasks: Optional[Sequence[int]] = None) -> float:
    """BKT_b = 1/(T-1) sum_{k=0..T-2} (A^{T-1}_{b,k} - A^0_{b,k}) (with ``tasks``: over the
    distinct trained tasks except the last experience's)."""
    f, r = _arr(A_final, "A_final"), _arr(A_ref, "A_ref")
    _same_shape(f, r)
    b = _check_b(b, f)
    rows = _bwd(len(f)) if tasks is None else _bwd_tasks(_task_list(tasks, len(tasks), len(f)))
    return float((_rows(f, rows, "A_final")[:, b] - _rows(r, rows, "A_ref")[:, b]).mean())


def fkt_mean(A_main, A_ref, tasks: Optional[Sequence[int]] = None) -> float:
    """1/(beta+1) sum_b FKT_b."""
    beta = _arr(A_main, "A_main").shape[1] - 1
    return float(np.mean([fkt(A_main, A_ref, b, tasks) for b in range(beta + 1)]))


def bkt_mean(A_final, A_ref, tasks: Optional[Sequence[int]] = None) -> float:
    """1/(beta+1) sum_b BKT_b."""
    beta = _arr(A_final, "A_final").shape[1] - 1
    return float(np.mean([bkt(A_final, A_ref, b, tasks) for b in range(beta + 1)]))


def average_final_accuracy(final_acc: Sequence[float]) -> float:
    """Mean over experiences of the accuracy at the end of training."""
    a = np.asarray([np.nan if v is None else v for v in final_acc], dtype=float)
    if a.size == 0 or np.isnan(a).any():
        raise ValueError("final accuracies must be a non-empty list without missing values")
    return float(a.mean())


def transfer_summaries(
    A_main,
    A_final,
    A_ref,
    final_acc: Optional[Sequence[float]] = None,
    end_acc: Optional[Sequence[float]] = None,
    tasks: Optional[Sequence[int]] = None,
) -> dict:
    """Every transfer score of one run, the one place they are computed (fractions):
    ``FKT`` and ``BKT`` = ``{b: [FKT_b for b = 0..beta], half: at b = beta // 2, beta: at
    b = beta, mean: over b}``, ``LCA_0``, ``LCA_0_F``, ``LCA_0_B``, ``LCA_F``, ``LCA_B``
    and, given the accuracies, ``AvgFinalAcc``/``AvgEndAcc`` (else None). ``tasks``: the
    task of each training experience (row of ``A_main``) when tasks repeat."""
    beta = _arr(A_main, "A_main").shape[1] - 1

    def summary(values: list[float]) -> dict:
        return {
            "b": values,
            "half": values[beta // 2],
            "beta": values[beta],
            "mean": float(np.mean(values)),
        }

    t = tasks
    return {
        "FKT": summary([fkt(A_main, A_ref, b, t) for b in range(beta + 1)]),
        "BKT": summary([bkt(A_final, A_ref, b, t) for b in range(beta + 1)]),
        "LCA_0": lca_zero(A_ref, "all", t),
        "LCA_0_F": lca_zero(A_ref, "forward", t),
        "LCA_0_B": lca_zero(A_ref, "backward", t),
        "LCA_F": lca_forward(A_main),
        "LCA_B": lca_backward(A_final, t),
        "AvgFinalAcc": None if final_acc is None else average_final_accuracy(final_acc),
        "AvgEndAcc": None if end_acc is None else average_final_accuracy(end_acc),
    }


def transfer_table(
    A_main,
    A_final,
    A_ref,
    final_acc: Optional[Sequence[float]] = None,
    tasks: Optional[Sequence[int]] = None,
) -> dict:
    """NeuMoSync Table 1's columns (fractions; x100 for percent), flat: ``BKT_half``,
    ``BKT_beta``, ``BKT_mean``, ``FKT_*``, ``LCA_*`` (and ``AvgFinalAcc`` given
    ``final_acc``), from :func:`transfer_summaries`."""
    s = transfer_summaries(A_main, A_final, A_ref, final_acc, None, tasks)
    out = {
        f"{side}_{at}": s[side][at] for side in ("BKT", "FKT") for at in ("half", "beta", "mean")
    }
    out.update({k: s[k] for k in ("LCA_0", "LCA_0_F", "LCA_0_B", "LCA_F", "LCA_B")})
    if final_acc is not None:
        out["AvgFinalAcc"] = s["AvgFinalAcc"]
    return out


# --------------------------------------------------------------------------- the metric

# Metric names (Avalanche's ``Name/<phase>_phase/<stream>_stream``, docs/metrics.md): measured
# in the training phase (the main run and the probes train) on the test subsets, once per
# stream of experiences (when every task is trained).
PHASE_STREAM = "train_phase/test_stream"
METRIC_NAMES = {  # transfer_table's keys (+ AvgEndAcc) -> emitted metric names
    "BKT_half": "BKT_Half_Stream",
    "BKT_beta": "BKT_Beta_Stream",
    "BKT_mean": "BKT_Mean_Stream",
    "FKT_half": "FKT_Half_Stream",
    "FKT_beta": "FKT_Beta_Stream",
    "FKT_mean": "FKT_Mean_Stream",
    "LCA_0": "LCA0_Stream",
    "LCA_0_F": "LCA0_F_Stream",
    "LCA_0_B": "LCA0_B_Stream",
    "LCA_F": "LCA_F_Stream",
    "LCA_B": "LCA_B_Stream",
    "AvgFinalAcc": "AvgFinalAcc_Stream",
    "AvgEndAcc": "AvgEndAcc_Stream",
}


def metric_name(key: str) -> str:
    """The emitted name of a score key, e.g. ``FKT_half`` -> ``FKT_Half_Stream/train_phase/
    test_stream``."""
    if key not in METRIC_NAMES:
        raise ValueError(f"unknown transfer score {key!r}; valid: {', '.join(METRIC_NAMES)}")
    return f"{METRIC_NAMES[key]}/{PHASE_STREAM}"


class KnowledgeTransferMetric(Observer, PluginMetric[dict]):
    """Collect A^{k-1}, probe A^{T-1} and A^0, and emit NeuMoSync Table 1's columns.

    The one door to knowledge transfer: a ``PluginMetric`` for an ``EvaluationPlugin``
    (``EvaluationPlugin(KnowledgeTransferMetric(test_stream=..., beta=...), ...)``) that
    measures from its callbacks, emits the scores to the loggers and keeps the arrays
    for :meth:`to_dict` (the suite runner's record) and :func:`transfer_table`. It only
    evaluates and trains forks, so it needs no place in ``plugins=``; an
    :class:`~avalanche_neumod.observer.Observer`, it stays out of the probes' forks.

    During the main run it measures, for each training experience ``k``, the fixed
    test subset (``eval_samples``) of ``k``'s *task* before the first update of ``k``
    and after each of its first ``beta`` updates (a measurement after update ``b`` is
    taken once every plugin has finished that iteration): row ``k`` of ``A_main``.
    A training experience's task is its test experience (:mod:`.task_identity`:
    ``task_id``, else ``current_experience``), so a task trained again
    (``benchmarks.recurring``) is scored on its own test set; ``tasks[k]`` records it.
    It keeps a fork of the strategy (:mod:`~avalanche_neumod.evaluation.probes`) at
    the reference state: ``reference="init"``: before the first update of the first
    experience (the initial model, same method); ``"first"``: before the first update
    of the second. Once every test experience's task has been trained (at
    ``after_training``) and ``probe`` is on, it measures the final accuracy on every
    task, then forks the final strategy for each backward task (every trained task
    but the last experience's) and the reference snapshot for each task, trains
    ``beta`` batches on it with the method's own update rule and records the curves
    (rows of ``A_final`` and ``A_ref``, one per task). Should training go on after
    that (a stream ending in repeats), the final-state probes are run again at the
    next ``after_training``. Probes run between saved and restored global random
    states, on forks: the main run's model, optimizer, plugins and loggers are
    untouched.

    Emits at ``after_training`` once every task is trained (again after any later
    experience, with the final-state probes redone): ``BKT_Half_Stream``,
    ``BKT_Beta_Stream``, ``BKT_Mean_Stream``, ``FKT_Half_Stream``, ``FKT_Beta_Stream``,
    ``FKT_Mean_Stream``, ``LCA0_Stream``, ``LCA0_F_Stream``, ``LCA0_B_Stream``,
    ``LCA_F_Stream``, ``LCA_B_Stream``, ``AvgFinalAcc_Stream`` (final state, all tasks)
    and ``AvgEndAcc_Stream`` (each training experience's task at the end of that
    experience), each as ``<name>/train_phase/test_stream`` with x =
    ``clock.train_iterations``. Without probes only ``LCA_F_Stream`` and the two
    accuracies. Old names: docs/metrics.md.
    """

    @checked(beta=integer(1), eval_samples=integer(1, none_ok=True))
    def __init__(
        self,
        test_stream: Optional[Sequence] = None,
        *,
        beta: int,
        experiences: Optional[Sequence] = None,
        eval_samples: Optional[int] = 1000,
        reference: str = "init",
        probe: bool = True,
        seed: int = 0,
        batch_size: int = 1024,
        forward: Optional[ForwardFn] = None,
        exclude: Sequence[type] = (),
    ):
        super().__init__()
        if isinstance(test_stream, KnowledgeTransferMetric):
            raise TypeError(
                "KnowledgeTransferMetric is the plugin itself now: build one, "
                "KnowledgeTransferMetric(test_stream=..., beta=...), put it in the "
                "EvaluationPlugin and read its to_dict() (docs/metrics.md)"
            )
        if (test_stream is None) == (experiences is None):
            raise ValueError("give exactly one of test_stream or experiences=")
        exps = list(test_stream if test_stream is not None else experiences)
        if reference not in REFERENCES:
            raise ValueError(f"unknown reference {reference!r}; valid: {', '.join(REFERENCES)}")
        if len(exps) < 2:
            raise ValueError(f"transfer metrics need T >= 2 experiences, got {len(exps)}")
        self.beta = int(beta)
        self.n_experiences = len(exps)
        self.task_index = TaskIndex(exps)
        self.eval_samples = eval_samples
        self.reference = reference
        self.probe = probe
        self.seed = seed
        self.exclude = tuple(exclude)
        self.test_experiences = exps
        self.evaluator = SubsetEvaluator(
            experience_subsets(exps, eval_samples, seed), batch_size, forward
        )
        self.reset()

    def reset(self) -> None:
        """Forget every measurement and probe (a new run)."""
        T, n = self.n_experiences, self.beta + 1
        self.A_main: list[list[Optional[float]]] = []  # one row per training experience
        self.A_final: list[list[Optional[float]]] = [[None] * n for _ in range(T)]
        self.A_ref: list[list[Optional[float]]] = [[None] * n for _ in range(T)]
        self.final_acc: list[Optional[float]] = [None] * T
        self.end_acc: list[Optional[float]] = []  # one per training experience
        self.tasks: list[int] = []  # tasks[k]: the task (test experience) trained in k
        self.train_experiences: dict[int, object] = {}  # by task
        self.snapshot = None
        self.current = -1  # the task being trained
        self.done = False
        self.rounds = 0  # finish() rounds (more than one only if training went on)
        self.probe_seconds = 0.0
        self.probe_updates = 0
        self.probe_points = 0
        self._emitted = 0  # the finish() round last emitted
        self._b = 0
        self._start = False
        self._pending = False

    # -- main run
    def _measure(self, strategy) -> float:
        k = self.current
        return self.evaluator.evaluate(strategy.model, [k], strategy.device)[k]

    def _flush(self, strategy) -> None:
        if self._start:
            self._start = False
            k = len(self.A_main) - 1
            if self.snapshot is None and k == (0 if self.reference == "init" else 1):
                self.snapshot = snapshot_strategy(strategy, self._shared(), self.exclude)
            self.A_main[k][0] = self._measure(strategy)
        elif self._pending:
            self._pending = False
            self.A_main[-1][self._b] = self._measure(strategy)

    def _shared(self) -> list:
        return [*self.train_experiences.values(), *self.test_experiences]

    # -- Avalanche callbacks (from the EvaluationPlugin, after every plugin)
    def before_training(self, strategy, **kwargs) -> None:
        ev = getattr(strategy, "evaluator", None)
        if self in strategy.plugins and ev is not None and self in ev.metrics:
            raise RuntimeError(
                "KnowledgeTransferMetric is both in plugins= and in the EvaluationPlugin: it "
                "would measure twice; keep it in the EvaluationPlugin only"
            )

    def before_training_exp(self, strategy, **kwargs) -> None:
        task = self.task_index.of(strategy.experience)
        if self.done:  # training goes on after the probes: they are no longer final
            T, n = self.n_experiences, self.beta + 1
            self.done = False
            self.A_final = [[None] * n for _ in range(T)]
            self.final_acc = [None] * T
        self.current = task
        self.tasks.append(task)
        self.A_main.append([None] * (self.beta + 1))
        self.train_experiences[task] = strategy.experience
        self._b = 0
        self._start = True
        self._pending = False

    def before_training_iteration(self, strategy, **kwargs) -> None:
        if self._start or self._pending:
            self._flush(strategy)

    def after_training_iteration(self, strategy, **kwargs) -> None:
        self._b += 1
        if self._b <= self.beta:
            self._pending = True

    def after_training_epoch(self, strategy, **kwargs) -> None:
        self._flush(strategy)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self._flush(strategy)
        if self._b < self.beta:
            raise ValueError(
                f"experience {len(self.A_main) - 1} had {self._b} training iterations; "
                f"beta={self.beta} needs at least beta batches per experience"
            )
        self.end_acc.append(self._measure(strategy))

    def after_training(self, strategy, **kwargs) -> Optional[list[MetricValue]]:
        self.finish(strategy)
        if not self.done or self._emitted == self.rounds:
            return None
        self._emitted = self.rounds
        if self.complete:
            values = self.scores()
        else:
            values = {
                "LCA_F": lca_forward(self.A_main),
                "AvgFinalAcc": average_final_accuracy(self.final_acc),
                "AvgEndAcc": average_final_accuracy(self.end_acc),
            }
        x = strategy.clock.train_iterations
        return [MetricValue(self, metric_name(k), float(v), x) for k, v in values.items()]

    # -- probes
    @property
    def all_trained(self) -> bool:
        """Every test experience's task has been trained at least once."""
        return len(set(self.tasks)) == self.n_experiences

    def finish(self, strategy) -> None:
        """Run the probes once every task is trained (idempotent until training goes on)."""
        if self.done or not self.all_trained or self._start:
            return
        self.done = True
        self.rounds += 1
        T = self.n_experiences
        accs = self.evaluator.evaluate(strategy.model, range(T), strategy.device)
        self.final_acc = [accs[k] for k in range(T)]
        if not self.probe:
            return
        if self.snapshot is None:
            raise ValueError(
                "probes need the reference state: train the experiences with this metric "
                "in the evaluator from the first one on"
            )
        t0 = time.perf_counter()
        with preserved_rng():
            share = self._shared()
            for k in _bwd_tasks(self.tasks):
                self.A_final[k] = self._probe(strategy, k, share)
            for k in range(T):
                if self.A_ref[k][0] is None:  # the reference state never changes
                    self.A_ref[k] = self._probe(self.snapshot, k, share)
        self.probe_seconds += time.perf_counter() - t0

    def _probe(self, start, k: int, share: list) -> list[float]:
        accs = run_probe(
            start,
            self.train_experiences[k],
            k,
            self.evaluator,
            self.beta,
            seed=self.seed * 1_000_003 + k,
            share=share,
            exclude=self.exclude,
        )
        self.probe_updates += self.beta
        self.probe_points += self.beta + 1
        return accs

    # -- results
    @property
    def complete(self) -> bool:
        return self.done and self.probe

    def scores(self) -> dict:
        """:func:`transfer_table` of the collected arrays (after the probes)."""
        if not self.complete:
            raise ValueError("transfer scores need the probes: train all experiences first")
        out = transfer_table(self.A_main, self.A_final, self.A_ref, self.final_acc, self.tasks)
        out["AvgEndAcc"] = average_final_accuracy(self.end_acc)
        return out

    def result(self) -> dict:
        """:meth:`scores` once the probes have run, else ``{}``."""
        return self.scores() if self.complete else {}

    def to_dict(self) -> dict:
        """JSON-serialisable arrays, settings and (when complete) scores."""
        d = {
            "beta": self.beta,
            "reference": self.reference,
            "eval_samples": self.eval_samples,
            "tasks": list(self.tasks),
            "A_main": self.A_main,
            "A_final": self.A_final,
            "A_ref": self.A_ref,
            "final_acc": self.final_acc,
            "end_acc": self.end_acc,
            "probe_seconds": self.probe_seconds,
        }
        if self.complete:
            d["scores"] = self.scores()
        return d

    def __str__(self) -> str:
        return "KnowledgeTransferMetric"


def __getattr__(name: str) -> type:
    """Former names (``KnowledgeTransferPlugin``): this class, with a DeprecationWarning."""
    return resolve(__name__, name)
