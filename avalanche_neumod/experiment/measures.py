"""The suite's optional metrics: from a name in ``metrics:`` to plugins and saved JSON.

Accuracy is always recorded (``cell.py``). Each optional measure here builds the
evaluation library's metric for the cell's ``EvaluationPlugin`` (the same object a
user gives an ``EvaluationPlugin``: its values reach the evaluator, and through it any
logger), and after training turns what that metric measured into JSON (curves,
arrays and the scalars of docs/metrics.md):

- ``stability_gap``: the stability-gap curves (a ``StabilityGapRecord``);
- ``transfer``: the knowledge-transfer probes, LCA/FKT/BKT (a ``TransferRecord``);
- ``plasticity``: plasticity diagnostics per experience;
- ``neumosync_diagnostics``: spread, task change and input sensitivity of
  NeuMoSync's alphas per layer, and its logit scale (docs/neumosync.md).

:func:`histories` collects, for every cell, what the method itself records over
time, and :func:`failure` whether its mechanism broke the run, both through the method's
hooks (``training/method.py``).

Each measure imports its evaluation class directly (:meth:`Measure.receiver`), when
a suite that asks for it loads, so this module itself stays light.
"""

from __future__ import annotations

from typing import Any, Optional

from ..records import (
    SG_TOLERANCE,
    SG_WINDOWS,
    CellResult,
    Measures,
    StabilityGapRecord,
    StabilityGapScores,
    TransferRecord,
)
from . import registry


class Measure:
    """One optional measure of a cell."""

    name = ""
    # the arguments the measure itself reads, and those it supplies itself (the rest go
    # to :meth:`receiver`, checked against its signature when the suite loads, ``cell_arguments``)
    own_args: tuple[str, ...] = ()
    supplied_args: tuple[str, ...] = ()

    def __init__(self, args: dict, bm, info: dict, cfg: dict):
        self.args = dict(args or {})
        self.bm = bm
        self.info = info
        self.cfg = cfg

    @staticmethod
    def receiver() -> Optional[Any]:
        """The evaluation class (or function) that receives the ``args``."""
        return None

    def metrics(self) -> list:
        """``PluginMetric`` objects for the cell's ``EvaluationPlugin``."""
        return []

    def plugins(self) -> list:
        """``SupervisedPlugin`` objects for the strategy (a measure that changes or drives
        training; a metric that only measures is in :meth:`metrics`)."""
        return []

    def attach(self, strategy) -> None:
        """Called once the strategy exists."""

    def collect(self, strategy, result: CellResult) -> Any:
        """The record of what was measured: a typed record of ``avalanche_neumod.records``
        (``to_dict()`` gives its JSON) or a JSON-ready dict."""
        return {}


class StabilityGap(Measure):
    """The stability-gap curves, boundaries and both conventions' scores.

    De Lange's scores use every tracked curve; NGM-SGD's (``convention="ngm"``) score the
    first tracked experience's curve alone, as the authors' code does.
    """

    name = "stability_gap"
    own_args = ("windows", "tolerance")
    supplied_args = ("test_stream",)

    @staticmethod
    def receiver() -> Any:
        # evaluation imports torch and Avalanche: not when a suite loads
        from ..evaluation.stability_gap import StabilityGapMetric

        return StabilityGapMetric

    def metrics(self) -> list:
        cls = self.receiver()
        a = dict(self.args)
        self.windows = tuple(a.pop("windows", SG_WINDOWS))
        self.tolerance = float(a.pop("tolerance", SG_TOLERANCE))
        tracked = a.pop("tracked", "all")
        a.setdefault("seed", int(self.cfg["seed"]))  # each seed its own test subsets
        self.metric = cls(
            self.bm.test_stream,
            tracked=tracked,
            windows=self.windows,
            tolerance=self.tolerance,
            **a,
        )
        return [self.metric]

    def collect(self, strategy, result: CellResult) -> StabilityGapRecord:
        """The metric's curves with both conventions' scores (a finished cell only)."""
        from ..evaluation.stability_gap import stability_gap_scores as score  # as receiver()

        d = self.metric.to_dict()
        d["curves"] = {k: v for k, v in d["curves"].items() if v["x"]}
        rec = StabilityGapRecord.from_dict(
            {**d, "windows": list(self.windows), "tolerance": self.tolerance}
        )
        first = rec.first_curve()
        if first is not None and result.status == "ok":
            for conv, curves in (("delange", rec.curves), ("ngm", dict([first]))):
                s = score(
                    curves, rec.boundaries, conv, self.windows, self.tolerance, tasks=rec.tasks
                )
                rec.scores[conv] = StabilityGapScores.from_dict(s)
            rec.scores["ngm"].experience = int(first[0])
        return rec


class Transfer(Measure):
    """Knowledge-transfer probes: the A arrays, FKT_b/BKT_b for every b, LCA."""

    name = "transfer"
    supplied_args = ("test_stream",)

    @staticmethod
    def receiver() -> Any:
        # evaluation imports torch and Avalanche: not when a suite loads
        from ..evaluation.transfer import KnowledgeTransferMetric

        return KnowledgeTransferMetric

    def metrics(self) -> list:
        cls = self.receiver()
        a = dict(self.args)
        a.setdefault("seed", int(self.cfg["seed"]))
        self.metric = cls(self.bm.test_stream, **a)
        return [self.metric]

    def collect(self, strategy, result: CellResult) -> TransferRecord:
        """The probes' arrays, scored (``transfer_summaries``) when the cell finished."""
        d = self.metric.to_dict()
        return TransferRecord.from_arrays(d, score=result.status == "ok" and "scores" in d)


class Plasticity(Measure):
    """Plasticity diagnostics, as emitted by ``PlasticityMetric``."""

    name = "plasticity"
    PREFIXES = ("DormantFraction", "EffectiveRank", "MeanAbsWeight", "GradNorm")

    @staticmethod
    def receiver() -> Any:
        # evaluation imports torch and Avalanche: not when a suite loads
        from ..evaluation.plasticity import PlasticityMetric

        return PlasticityMetric

    def metrics(self) -> list:
        cls = self.receiver()
        a = dict(self.args)
        a.setdefault("seed", int(self.cfg["seed"]))
        return [cls(**a)]

    def collect(self, strategy, result: CellResult) -> dict:
        out = {}
        for name, (xs, vs) in strategy.evaluator.get_all_metrics().items():
            if name.split("/")[0] in self.PREFIXES:
                out[name] = {"x": list(xs), "value": [float(v) for v in vs]}
        return out


class NeuMoSyncDiagnostics(Plasticity):
    """NeuMoSync's alpha diagnostics, as emitted by ``NeuMoSyncDiagnostics`` (nothing for
    other methods)."""

    name = "neumosync_diagnostics"
    PREFIXES = (
        "AlphaStd",
        "AlphaDev",
        "AlphaTaskChange",
        "AlphaInputWithin",
        "AlphaInputBetween",
        "LogitScale",  # the InferenceNetwork's and the MainNetwork's (the temperature hypothesis)
        "AlphaScale",  # the caps' distance from neutral, per alpha kind
    )

    @staticmethod
    def receiver() -> Any:
        from ..evaluation.neumosync_diagnostics import NeuMoSyncDiagnostics  # as above

        return NeuMoSyncDiagnostics

    def metrics(self) -> list:
        cls = self.receiver()
        a = dict(self.args)
        a.setdefault("seed", int(self.cfg["seed"]))
        return [cls(**a)]


MEASURES: dict[str, type[Measure]] = {
    "stability_gap": StabilityGap,
    "transfer": Transfer,
    "plasticity": Plasticity,
    "neumosync_diagnostics": NeuMoSyncDiagnostics,
}


def histories(strategy) -> dict:
    """What the method records about itself over time (collected for every cell): the
    ``mechanism_history`` hooks of the strategy and its plugins, merged
    (:class:`~avalanche_neumod.training.method.ReportsMechanism`; NGM-SGD's ``"gains"``,
    NeuMoSync's ``"alphas"``)."""
    from ..training.method import mechanism_hooks  # start-up: ``training`` loads torch

    out: dict = {}
    for hook in mechanism_hooks(strategy, "mechanism_history"):
        out.update(hook())
    return out


def failure(strategy) -> Optional[dict]:
    """The first ``mechanism_failure`` report of the strategy or its plugins (a dict with
    at least ``"reason"``), or None when every mechanism works."""
    from ..training.method import mechanism_hooks  # start-up: ``training`` loads torch

    for hook in mechanism_hooks(strategy, "mechanism_failure"):
        info = hook()
        if info is not None:
            return info
    return None


def store(into: Measures, name: str, record: Any) -> None:
    """Put a measure's record in its typed slot of ``into`` (``transfer``,
    ``stability_gap``), any other in ``into.other``."""
    if isinstance(record, (TransferRecord, StabilityGapRecord)):
        setattr(into, name, record)
    else:
        into.other[name] = record


def build(metrics_cfg: dict, bm, info: dict, cfg: dict) -> list[Measure]:
    """The measures a cell's ``metrics:`` mapping asks for (unknown names list the valid)."""
    out = []
    for name, args in (metrics_cfg or {}).items():
        if name not in MEASURES:
            raise registry.unknown("metric", name, MEASURES)
        out.append(MEASURES[name](args or {}, bm, info, cfg))
    return out
