"""Knowledge transfer and learning speed: LCA_0, LCA_F, LCA_B, FKT_b, BKT_b (DESIGN 7.1).

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
"""

from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np
from avalanche.core import SupervisedPlugin
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

from .._checks import check_integer
from .probes import preserved_rng, run_probe, snapshot_strategy
from .subset_eval import ForwardFn, SubsetEvaluator, experience_subsets

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


def _check_b(b: int, a: np.ndarray) -> int:
    beta = a.shape[1] - 1
    if int(b) != b or not 0 <= b <= beta:
        raise ValueError(f"b must be an integer in [0, {beta}], got {b}")
    return int(b)


def lca_forward(A_main) -> float:
    """LCA_F: mean of A^{k-1}_{b,k} over b = 0..beta and k = 1..T-1."""
    a = _arr(A_main, "A_main")
    return float(_rows(a, _fwd(len(a)), "A_main").mean())


def lca_backward(A_final) -> float:
    """LCA_B: mean of A^{T-1}_{b,k} over b = 0..beta and k = 0..T-2."""
    a = _arr(A_final, "A_final")
    return float(_rows(a, _bwd(len(a)), "A_final").mean())


def lca_zero(A_ref, side: str = "all") -> float:
    """LCA_0: mean of A^0_{b,k} over b and k in 0..T-1 (``"all"``), 1..T-1 (``"forward"``)
    or 0..T-2 (``"backward"``)."""
    if side not in SIDES:
        raise ValueError(f"unknown side {side!r}; valid: {', '.join(SIDES)}")
    a = _arr(A_ref, "A_ref")
    T = len(a)
    rows = {"all": range(T), "forward": _fwd(T), "backward": _bwd(T)}[side]
    return float(_rows(a, rows, "A_ref").mean())


def fkt(A_main, A_ref, b: int) -> float:
    """FKT_b = 1/(T-1) sum_{k=1..T-1} (A^{k-1}_{b,k} - A^0_{b,k})."""
    m, r = _arr(A_main, "A_main"), _arr(A_ref, "A_ref")
    _same_shape(m, r)
    b = _check_b(b, m)
    rows = _fwd(len(m))
    return float((_rows(m, rows, "A_main")[:, b] - _rows(r, rows, "A_ref")[:, b]).mean())


def bkt(A_final, A_ref, b: int) -> float:
    """BKT_b = 1/(T-1) sum_{k=0..T-2} (A^{T-1}_{b,k} - A^0_{b,k})."""
    f, r = _arr(A_final, "A_final"), _arr(A_ref, "A_ref")
    _same_shape(f, r)
    b = _check_b(b, f)
    rows = _bwd(len(f))
    return float((_rows(f, rows, "A_final")[:, b] - _rows(r, rows, "A_ref")[:, b]).mean())


def fkt_mean(A_main, A_ref) -> float:
    """1/(beta+1) sum_b FKT_b."""
    beta = _arr(A_main, "A_main").shape[1] - 1
    return float(np.mean([fkt(A_main, A_ref, b) for b in range(beta + 1)]))


def bkt_mean(A_final, A_ref) -> float:
    """1/(beta+1) sum_b BKT_b."""
    beta = _arr(A_final, "A_final").shape[1] - 1
    return float(np.mean([bkt(A_final, A_ref, b) for b in range(beta + 1)]))


def average_final_accuracy(final_acc: Sequence[float]) -> float:
    """Mean over experiences of the accuracy at the end of training."""
    a = np.asarray([np.nan if v is None else v for v in final_acc], dtype=float)
    if a.size == 0 or np.isnan(a).any():
        raise ValueError("final accuracies must be a non-empty list without missing values")
    return float(a.mean())


def transfer_table(A_main, A_final, A_ref, final_acc: Optional[Sequence[float]] = None) -> dict:
    """NeuMoSync Table 1's columns (fractions; x100 for percent)."""
    beta = _arr(A_main, "A_main").shape[1] - 1
    half = beta // 2
    out = {
        "BKT_half": bkt(A_final, A_ref, half),
        "BKT_beta": bkt(A_final, A_ref, beta),
        "BKT_mean": bkt_mean(A_final, A_ref),
        "FKT_half": fkt(A_main, A_ref, half),
        "FKT_beta": fkt(A_main, A_ref, beta),
        "FKT_mean": fkt_mean(A_main, A_ref),
        "LCA_0": lca_zero(A_ref, "all"),
        "LCA_0_F": lca_zero(A_ref, "forward"),
        "LCA_0_B": lca_zero(A_ref, "backward"),
        "LCA_F": lca_forward(A_main),
        "LCA_B": lca_backward(A_final),
    }
    if final_acc is not None:
        out["AvgFinalAcc"] = average_final_accuracy(final_acc)
    return out


# --------------------------------------------------------------------------- plugin


class KnowledgeTransferPlugin(SupervisedPlugin):
    """Collect A^{k-1}, probe A^{T-1} and A^0, for :func:`transfer_table` (DESIGN 7.1).

    During the main run it measures experience ``k``'s fixed test subset
    (``eval_samples``) before the first update of ``k`` and after each of its
    first ``beta`` updates (a measurement after update ``b`` is taken once every
    plugin has finished that iteration). It keeps a fork of the strategy
    (:mod:`~avalanche_neumod.evaluation.probes`) at the reference state:
    ``reference="init"``: before the first update of experience 0 (the initial
    model, same method); ``"first"``: before the first update of experience 1.
    When experience ``T-1`` (``T`` = length of the test stream) has been trained
    (at ``after_training``) and ``probe`` is on, it measures the final accuracy on
    every experience, then forks the final strategy for each old experience ``k``
    and the reference snapshot for each ``k``, trains ``beta`` batches on ``k``
    with the method's own update rule and records the curves. Probes run between
    saved and restored global random states, on forks: the main run's model,
    optimizer, plugins and loggers are untouched.
    """

    neumod_observer = True

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
        if (test_stream is None) == (experiences is None):
            raise ValueError("give exactly one of test_stream or experiences=")
        exps = list(test_stream if test_stream is not None else experiences)
        check_integer("beta", beta, 1)
        if reference not in REFERENCES:
            raise ValueError(f"unknown reference {reference!r}; valid: {', '.join(REFERENCES)}")
        if len(exps) < 2:
            raise ValueError(f"transfer metrics need T >= 2 experiences, got {len(exps)}")
        check_integer("eval_samples", eval_samples, 1, none_ok=True)
        self.beta = int(beta)
        self.n_experiences = len(exps)
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
        T, n = self.n_experiences, self.beta + 1
        self.A_main: list[list[Optional[float]]] = [[None] * n for _ in range(T)]
        self.A_final: list[list[Optional[float]]] = [[None] * n for _ in range(T)]
        self.A_ref: list[list[Optional[float]]] = [[None] * n for _ in range(T)]
        self.final_acc: list[Optional[float]] = [None] * T
        self.end_acc: list[Optional[float]] = [None] * T
        self.train_experiences: dict[int, object] = {}
        self.snapshot = None
        self.current = -1
        self.done = False
        self.probe_seconds = 0.0
        self.probe_updates = 0
        self.probe_points = 0
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
            k = self.current
            if self.snapshot is None and k == (0 if self.reference == "init" else 1):
                self.snapshot = snapshot_strategy(strategy, self._shared(), self.exclude)
            self.A_main[k][0] = self._measure(strategy)
        elif self._pending:
            self._pending = False
            self.A_main[self.current][self._b] = self._measure(strategy)

    def _shared(self) -> list:
        return [*self.train_experiences.values(), *self.test_experiences]

    def before_training_exp(self, strategy, **kwargs) -> None:
        k = int(strategy.experience.current_experience)
        if k >= self.n_experiences:
            raise ValueError(
                f"experience {k} is beyond the {self.n_experiences} test experiences given"
            )
        self.current = k
        self.train_experiences[k] = strategy.experience
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
        k = self.current
        if self._b < self.beta:
            raise ValueError(
                f"experience {k} had {self._b} training iterations; beta={self.beta} needs "
                "at least beta batches per experience"
            )
        self.end_acc[k] = self._measure(strategy)

    def after_training(self, strategy, **kwargs) -> None:
        self.finish(strategy)

    # -- probes
    def finish(self, strategy) -> None:
        """Run the probes once the last experience is trained (idempotent)."""
        if self.done or self.current != self.n_experiences - 1 or self._start:
            return
        self.done = True
        T = self.n_experiences
        accs = self.evaluator.evaluate(strategy.model, range(T), strategy.device)
        self.final_acc = [accs[k] for k in range(T)]
        if not self.probe:
            return
        missing = [k for k in range(T) if k not in self.train_experiences]
        if missing or self.snapshot is None:
            raise ValueError(
                f"probes need every experience 0..{T - 1} trained with this plugin attached "
                f"(missing: {missing})"
            )
        t0 = time.perf_counter()
        with preserved_rng():
            share = self._shared()
            for k in range(T - 1):
                self.A_final[k] = self._probe(strategy, k, share)
            for k in range(T):
                self.A_ref[k] = self._probe(self.snapshot, k, share)
        self.probe_seconds = time.perf_counter() - t0

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
        out = transfer_table(self.A_main, self.A_final, self.A_ref, self.final_acc)
        out["AvgEndAcc"] = average_final_accuracy(self.end_acc)
        return out

    def to_dict(self) -> dict:
        """JSON-serialisable arrays, settings and (when complete) scores."""
        d = {
            "beta": self.beta,
            "reference": self.reference,
            "eval_samples": self.eval_samples,
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

    result = to_dict


class KnowledgeTransferMetric(PluginMetric[dict]):
    """Emit a :class:`KnowledgeTransferPlugin`'s Table 1 columns through an ``EvaluationPlugin``.

    After the last experience: ``BKT_half``, ``BKT_beta``, ``BKT_mean``, ``FKT_half``,
    ``FKT_beta``, ``FKT_mean``, ``LCA_0``, ``LCA_0_F``, ``LCA_0_B``, ``LCA_F``,
    ``LCA_B``, ``AvgFinalAcc`` (final state, all experiences) and ``AvgEndAcc``
    (each experience at the end of its own training), as
    ``<name>/eval_phase/test_stream`` with x = ``clock.train_iterations``. Without
    probes only ``LCA_F`` and ``AvgFinalAcc``/``AvgEndAcc`` are emitted.
    """

    def __init__(self, plugin: KnowledgeTransferPlugin):
        super().__init__()
        self.plugin = plugin
        self._emitted = False

    def reset(self) -> None:
        self._emitted = False

    def result(self) -> dict:
        return self.plugin.scores() if self.plugin.complete else {}

    def before_training(self, strategy) -> None:
        if self.plugin not in strategy.plugins:
            raise RuntimeError(
                "KnowledgeTransferMetric: add its KnowledgeTransferPlugin to the strategy's "
                "plugins as well as the metric to the EvaluationPlugin"
            )

    def after_training(self, strategy):
        p = self.plugin
        p.finish(strategy)
        if not p.done or self._emitted:
            return None
        self._emitted = True
        if p.complete:
            values = p.scores()
        else:
            values = {
                "LCA_F": lca_forward(p.A_main),
                "AvgFinalAcc": average_final_accuracy(p.final_acc),
                "AvgEndAcc": average_final_accuracy(p.end_acc),
            }
        x = strategy.clock.train_iterations
        return [
            MetricValue(self, f"{k}/eval_phase/test_stream", float(v), x) for k, v in values.items()
        ]
