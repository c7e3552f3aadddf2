"""The accuracy matrix's rows as typed values: :class:`AccuracyMatrixMetric` (docs/metrics.md).

Row ``k`` of the accuracy matrix is the accuracy on every test experience after
training experience ``k``: ``A[k, j] = correct_j / n_j`` over the ``n_j`` samples of
test experience ``j``. The stream accuracy of the same evaluation is Avalanche's
``Top1_Acc_Stream``: every sample of the stream counted once,
``sum_j correct_j / sum_j n_j`` (Avalanche's ``StreamAccuracy`` keeps one ``Accuracy``
over all the stream's minibatches, whose ``Mean`` weighs each minibatch's accuracy by
its size), not the mean of the row.

:class:`AccuracyMatrixMetric` measures both with Avalanche's standalone
``Accuracy`` metric (one per experience, one per stream, updated with ``mb_output``
and ``mb_y`` after each evaluation iteration, as ``Top1_Acc_Exp``/``Top1_Acc_Stream``
are), so its values are theirs exactly, and keeps the last evaluation as an
:class:`AccuracyRow` that code reads directly (``metric.last``), with no parsing
of metric names. It emits ``AccMatrix_Exp/eval_phase/<stream>_stream/TaskNNN/ExpNNN``
at ``after_eval_exp`` and ``AccMatrix_Stream/eval_phase/<stream>_stream/TaskNNN`` at
``after_eval`` for Avalanche's loggers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from avalanche.evaluation.metric_definitions import PluginMetric
from avalanche.evaluation.metric_results import MetricValue
from avalanche.evaluation.metric_utils import get_metric_name, stream_type
from avalanche.evaluation.metrics import Accuracy
from avalanche.training.plugins import EvaluationPlugin

EXP_NAME = "AccMatrix_Exp"
STREAM_NAME = "AccMatrix_Stream"


@dataclass(frozen=True)
class AccuracyRow:
    """One evaluation of a stream: each evaluated experience's accuracy, by its
    ``current_experience`` index, and the stream accuracy (samples-weighted)."""

    stream: str
    experiences: dict[int, float]
    stream_accuracy: float

    def as_list(self, n: int) -> list[float]:
        """The row over experiences ``0..n-1``, NaN where an experience was not evaluated."""
        out = [math.nan] * n
        for j, acc in self.experiences.items():
            if not 0 <= j < n:
                raise ValueError(
                    f"experience {j} of {self.stream!r} is outside a row of {n} experiences"
                )
            out[j] = acc
        return out


class AccuracyMatrixMetric(PluginMetric[Optional[AccuracyRow]]):
    """Accuracy on each evaluated experience and on the whole stream, kept per evaluation.

    ``last`` (also ``result()``) is the :class:`AccuracyRow` of the last finished
    ``strategy.eval(stream)``; None before the first one.
    """

    def __init__(self) -> None:
        super().__init__()
        self._exp_acc = Accuracy()
        self._stream_acc = Accuracy()
        self._experiences: dict[int, float] = {}
        self.last: Optional[AccuracyRow] = None

    def reset(self) -> None:
        """Forget the evaluation in progress and the last row."""
        self._exp_acc.reset()
        self._stream_acc.reset()
        self._experiences = {}
        self.last = None

    def result(self) -> Optional[AccuracyRow]:
        return self.last

    def before_eval(self, strategy) -> None:
        self._stream_acc.reset()
        self._experiences = {}

    def before_eval_exp(self, strategy) -> None:
        self._exp_acc.reset()

    def after_eval_iteration(self, strategy) -> None:
        self._exp_acc.update(strategy.mb_output, strategy.mb_y)
        self._stream_acc.update(strategy.mb_output, strategy.mb_y)

    def after_eval_exp(self, strategy) -> list[MetricValue]:
        acc = self._exp_acc.result()
        self._experiences[int(strategy.experience.current_experience)] = acc
        name = get_metric_name(EXP_NAME, strategy, add_experience=True)
        return [MetricValue(self, name, acc, strategy.clock.train_iterations)]

    def after_eval(self, strategy) -> list[MetricValue]:
        acc = self._stream_acc.result()
        self.last = AccuracyRow(stream_type(strategy.experience), self._experiences, acc)
        self._experiences = {}
        name = get_metric_name(STREAM_NAME, strategy)
        return [MetricValue(self, name, acc, strategy.clock.train_iterations)]

    def __str__(self) -> str:
        return "AccMatrix"


def accuracy_matrix_metric(evaluator: EvaluationPlugin) -> Optional[AccuracyMatrixMetric]:
    """The ``AccuracyMatrixMetric`` among ``evaluator``'s metrics (None when absent;
    ValueError when there are several: whose row to read would be ambiguous)."""
    found = [m for m in evaluator.metrics if isinstance(m, AccuracyMatrixMetric)]
    if len(found) > 1:
        raise ValueError(f"the evaluator holds {len(found)} AccuracyMatrixMetric, expected one")
    return found[0] if found else None
