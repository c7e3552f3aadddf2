"""Metrics: the accuracy matrix's rows, knowledge transfer (LCA/FKT/BKT), stability gap,
plasticity diagnostics, NeuMoSync's alpha diagnostics.

Every scalar has a pure function over plain arrays, and each metric one class: a
``PluginMetric`` for Avalanche's ``EvaluationPlugin`` that calls those functions, emits
to the loggers and keeps what it measured (``to_dict()``). See ``docs/metrics.md``.
Former class names resolve to the one class, with a ``DeprecationWarning``
(:mod:`.renamed`).
"""

from ..models.units import dormant_fraction, redo_scores
from .accuracy_matrix import AccuracyMatrixMetric, AccuracyRow, accuracy_matrix_metric
from .csv_logger import MetricsCSVLogger
from .neumosync_diagnostics import (
    NeuMoSyncDiagnostics,
    alpha_difference,
    alpha_spread,
    neumosync_diagnostics_metrics,
)
from .plasticity import (
    PlasticityMetric,
    diagnose,
    effective_rank,
    grad_norm,
    mean_abs_weight,
    plasticity_metrics,
)
from .probes import fork_strategy, preserved_rng, run_probe, truncated_experience
from .renamed import resolve
from .stability_gap import (
    StabilityGapMetric,
    avg_acc,
    avg_min_acc,
    avg_recovery_iterations,
    avg_stability_gap,
    mean_curves,
    min_acc,
    recovery_iterations,
    stability_gap,
    stability_gap_scores,
    wc_acc,
    windowed_forgetting,
    windowed_plasticity,
)
from .subset_eval import SubsetEvaluator, fixed_subset
from .task_identity import TaskIndex, experience_identity
from .text_logger import PhasedInteractiveLogger, PhasedTextLogger
from .transfer import (
    KnowledgeTransferMetric,
    average_final_accuracy,
    bkt,
    bkt_mean,
    fkt,
    fkt_mean,
    lca_backward,
    lca_forward,
    lca_zero,
    transfer_table,
)

__all__ = [
    "AccuracyMatrixMetric",
    "AccuracyRow",
    "KnowledgeTransferMetric",
    "NeuMoSyncDiagnostics",
    "MetricsCSVLogger",
    "PhasedInteractiveLogger",
    "PhasedTextLogger",
    "PlasticityMetric",
    "StabilityGapMetric",
    "SubsetEvaluator",
    "TaskIndex",
    "accuracy_matrix_metric",
    "average_final_accuracy",
    "alpha_difference",
    "alpha_spread",
    "avg_acc",
    "avg_min_acc",
    "avg_recovery_iterations",
    "avg_stability_gap",
    "bkt",
    "bkt_mean",
    "diagnose",
    "dormant_fraction",
    "effective_rank",
    "experience_identity",
    "fixed_subset",
    "fkt",
    "fkt_mean",
    "fork_strategy",
    "grad_norm",
    "lca_backward",
    "lca_forward",
    "lca_zero",
    "mean_abs_weight",
    "mean_curves",
    "min_acc",
    "neumosync_diagnostics_metrics",
    "plasticity_metrics",
    "preserved_rng",
    "recovery_iterations",
    "redo_scores",
    "run_probe",
    "stability_gap",
    "stability_gap_scores",
    "transfer_table",
    "truncated_experience",
    "wc_acc",
    "windowed_forgetting",
    "windowed_plasticity",
]


def __getattr__(name: str) -> type:
    """Former names (``StabilityGapTracker``, ``KnowledgeTransferPlugin``): the one class."""
    return resolve(__name__, name)
