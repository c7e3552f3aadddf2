"""Typed result records: what a cell measured, written by ``experiment``, read by ``reporting``.

The one shape of a saved cell (``<run>/cells/<cell_id>.json``, docs/suites.md "Run folder and
result schema"): a :class:`CellResult` holding the accuracy metrics, curves, timings,
versions and the optional measures, two of them typed here because reports print their
scores: :class:`TransferRecord` (NeuMoSync's LCA/FKT/BKT) and :class:`StabilityGapRecord`
(De Lange's and NGM-SGD's stability-gap scores). Every score is computed once, by the
evaluation module that defines it (``evaluation.transfer.transfer_summaries``,
``evaluation.stability_gap.stability_gap_scores``), and stored here; reports format the
stored fields and never recompute them.

``to_dict``/``from_dict`` give the JSON form; :func:`migrate` reads files of an older
:data:`SCHEMA_VERSION`. Importing this module loads nothing heavy (no torch, no Avalanche)
and nothing else of ours, so every layer can import it; scoring a transfer record
(:meth:`TransferRecord.from_arrays` with ``score``, also when :func:`migrate` reads a
schema-1 file) imports ``evaluation.transfer`` (with Avalanche) at that call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

SCHEMA_VERSION = 2  # 1: transfer/stability-gap scores lower-cased and copied three ways

CONVENTIONS = ("delange", "ngm")
SG_WINDOWS = (10, 100)  # the stability-gap measure's default scoring windows and tolerance
SG_TOLERANCE = 0.01  # the stability-gap conventions (evaluation.stability_gap)
SG_NAMES = ("avg_ACC", "avg_min_ACC", "WC_ACC", "avg_SG", "avg_SG_abs", "avg_recovery")
LCA_NAMES = ("LCA_0", "LCA_0_F", "LCA_0_B", "LCA_F", "LCA_B")


def _opt_float(x: Any) -> Optional[float]:
    """A stored number as float (the strings "nan"/"inf" included), None kept."""
    return None if x is None else float(x)


def _require(d: Any, keys: tuple[str, ...], what: str) -> dict:
    if not isinstance(d, dict):
        raise ValueError(f"{what}: a mapping was expected, got {type(d).__name__}")
    missing = [k for k in keys if k not in d]
    if missing:
        raise ValueError(f"{what}: missing {', '.join(missing)}")
    return d


# --------------------------------------------------------------------------- transfer


@dataclass
class TransferSummary:
    """FKT_b (or BKT_b) for every b = 0..beta, and Table 1's summaries of it: the value at
    ``b = beta // 2`` (``half``), at ``b = beta`` (``beta``) and the mean over b."""

    b: list[float]
    half: float
    beta: float
    mean: float

    def to_dict(self) -> dict:
        return {"b": list(self.b), "half": self.half, "beta": self.beta, "mean": self.mean}

    @classmethod
    def from_dict(cls, d: dict) -> "TransferSummary":
        _require(d, ("b", "half", "beta", "mean"), "transfer summary")
        return cls([float(v) for v in d["b"]], *(float(d[k]) for k in ("half", "beta", "mean")))


@dataclass
class TransferRecord:
    """The knowledge-transfer probes' arrays and NeuMoSync Table 1's scores (fractions).

    ``A_main``, ``A_final``, ``A_ref`` as ``[k][b]`` (docs/metrics.md); the scores are None
    when the stream was not finished (a diverged cell keeps its arrays)."""

    beta: int
    reference: str
    eval_samples: Optional[int]
    tasks: list[int]
    A_main: list
    A_final: list
    A_ref: list
    final_acc: list
    end_acc: list
    probe_seconds: float = 0.0
    FKT: Optional[TransferSummary] = None
    BKT: Optional[TransferSummary] = None
    LCA_0: Optional[float] = None
    LCA_0_F: Optional[float] = None
    LCA_0_B: Optional[float] = None
    LCA_F: Optional[float] = None
    LCA_B: Optional[float] = None
    AvgFinalAcc: Optional[float] = None
    AvgEndAcc: Optional[float] = None

    ARRAYS = ("A_main", "A_final", "A_ref", "final_acc", "end_acc")
    SCALARS = (*LCA_NAMES, "AvgFinalAcc", "AvgEndAcc")

    @property
    def scored(self) -> bool:
        return self.FKT is not None

    def to_dict(self) -> dict:
        d: dict = {
            "beta": self.beta,
            "reference": self.reference,
            "eval_samples": self.eval_samples,
            "tasks": list(self.tasks),
            "probe_seconds": self.probe_seconds,
            **{k: getattr(self, k) for k in self.ARRAYS},
        }
        if self.scored:
            d["FKT"] = self.FKT.to_dict()
            d["BKT"] = self.BKT.to_dict()
            d.update({k: getattr(self, k) for k in self.SCALARS})
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TransferRecord":
        _require(d, ("beta", "tasks", *cls.ARRAYS), "transfer record")
        scores = {}
        if "FKT" in d:
            _require(d, ("BKT", *cls.SCALARS), "transfer record")
            scores = {k: _opt_float(d[k]) for k in cls.SCALARS}
            scores["FKT"] = TransferSummary.from_dict(d["FKT"])
            scores["BKT"] = TransferSummary.from_dict(d["BKT"])
        return cls(
            beta=int(d["beta"]),
            reference=str(d.get("reference", "init")),
            eval_samples=d.get("eval_samples"),
            tasks=[int(t) for t in d["tasks"]],
            probe_seconds=float(d.get("probe_seconds", 0.0)),
            **{k: d[k] for k in cls.ARRAYS},
            **scores,
        )

    @classmethod
    def from_arrays(cls, d: dict, score: bool) -> "TransferRecord":
        """The record of a ``KnowledgeTransferMetric.to_dict()`` (its flat ``scores`` are
        dropped); with ``score``, the scores by ``evaluation.transfer.transfer_summaries``."""
        rec = cls.from_dict({k: v for k, v in d.items() if k != "scores"})
        if score:
            # here, not at the top: the equations' module imports Avalanche, and reading
            # records (reports, the CLI) stays free of it unless a record is scored
            from .evaluation.transfer import transfer_summaries

            s = transfer_summaries(
                rec.A_main, rec.A_final, rec.A_ref, rec.final_acc, rec.end_acc, rec.tasks
            )
            rec.FKT = TransferSummary.from_dict(s["FKT"])
            rec.BKT = TransferSummary.from_dict(s["BKT"])
            for k in cls.SCALARS:
                setattr(rec, k, _opt_float(s[k]))
        return rec


def accuracy_kind(info: dict) -> str:
    """Which average of the accuracy matrix the stream calls for: its declared
    ``neumod_info["accuracy_kind"]``.

    ``"final"``: the mean of the last row (each experience at the end of the stream);
    ``"end_of_task"``: the mean of the diagonal (each experience right after its own
    training), for memorisation streams such as Random-Label. Every stream of
    ``avalanche_neumod.benchmarks`` declares it; a stream that does not (e.g. a user's
    benchmark) is scored by ``"final"``. Any other value raises ValueError.
    """
    kind = info.get("accuracy_kind", "final")
    valid = ("final", "end_of_task")
    if kind not in valid:
        raise ValueError(f"unknown accuracy_kind {kind!r}; valid: {', '.join(map(repr, valid))}")
    return kind


# --------------------------------------------------------------------------- stability gap


@dataclass
class StabilityGapScores:
    """``evaluation.stability_gap.stability_gap_scores`` of one convention, under its names:
    avg_ACC, avg_min_ACC, WC_ACC, avg_SG, avg_SG_abs, avg_recovery and the windowed
    ``WF<w>``/``WP<w>``; ``experience``: the scored curve (NGM's convention scores one)."""

    avg_ACC: float
    avg_min_ACC: float
    WC_ACC: float
    avg_SG: float
    avg_SG_abs: float
    avg_recovery: float
    windowed: dict[str, float] = field(default_factory=dict)
    experience: Optional[int] = None

    def get(self, name: str) -> float:
        """A score by its evaluation name (``avg_SG``, ``WF10``, ...)."""
        if name in SG_NAMES:
            return getattr(self, name)
        if name in self.windowed:
            return self.windowed[name]
        raise KeyError(f"no stability-gap score {name!r}; stored: {', '.join(self.to_dict())}")

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in SG_NAMES}
        d.update(self.windowed)
        if self.experience is not None:
            d["experience"] = self.experience
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "StabilityGapScores":
        _require(d, SG_NAMES, "stability-gap scores")
        win = {k: float(v) for k, v in d.items() if k not in SG_NAMES and k != "experience"}
        exp = d.get("experience")
        return cls(
            **{k: float(d[k]) for k in SG_NAMES},
            windowed=win,
            experience=None if exp is None else int(exp),
        )


@dataclass
class StabilityGapRecord:
    """The stability-gap metric's curves (``{exp: {x, acc}}``, x = updates done), the
    boundaries and task of each training experience, and the scores per convention
    (``delange``: every tracked curve; ``ngm``: the first tracked curve alone)."""

    curves: dict[str, dict]
    boundaries: list[int]
    tasks: list[int]
    tracked: list[int] = field(default_factory=list)
    eval_every: Optional[int] = None
    samples_per_exp: Optional[int] = None
    updates: Optional[int] = None
    windows: Optional[list[int]] = None
    tolerance: Optional[float] = None
    scores: dict[str, StabilityGapScores] = field(default_factory=dict)

    SETTINGS = ("tracked", "eval_every", "samples_per_exp", "updates", "windows", "tolerance")

    def first_curve(self) -> Optional[tuple[str, dict]]:
        """(experience, curve) of the first tracked experience, None without curves."""
        if not self.curves:
            return None
        k = min(self.curves, key=int)
        return k, self.curves[k]

    def to_dict(self) -> dict:
        return {
            "curves": self.curves,
            "boundaries": list(self.boundaries),
            "tasks": list(self.tasks),
            **{k: getattr(self, k) for k in self.SETTINGS},
            "scores": {c: s.to_dict() for c, s in self.scores.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> "StabilityGapRecord":
        _require(d, ("curves", "boundaries"), "stability-gap record")
        bad = sorted(set(d.get("scores") or {}) - set(CONVENTIONS))
        if bad:
            raise ValueError(f"stability-gap scores of unknown convention(s) {bad}: {CONVENTIONS}")
        return cls(
            curves={str(k): v for k, v in d["curves"].items()},
            boundaries=list(d["boundaries"]),
            tasks=list(d.get("tasks") or []),
            **{k: d.get(k) for k in cls.SETTINGS if k != "tracked"},
            tracked=list(d.get("tracked") or []),
            scores={c: StabilityGapScores.from_dict(s) for c, s in (d.get("scores") or {}).items()},
        )


# --------------------------------------------------------------------------- cell


TYPED_MEASURES = {"transfer": TransferRecord, "stability_gap": StabilityGapRecord}


@dataclass
class Measures:
    """A cell's measures: the typed records, and the others (``activity``, ``history``,
    ``plasticity``, ``neumosync_diagnostics``) as their JSON mappings in ``other``."""

    transfer: Optional[TransferRecord] = None
    stability_gap: Optional[StabilityGapRecord] = None
    other: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = dict(self.other)
        for name in TYPED_MEASURES:
            rec = getattr(self, name)
            if rec is not None:
                d[name] = rec.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "Measures":
        d = dict(d or {})
        typed = {k: TYPED_MEASURES[k].from_dict(d.pop(k)) for k in TYPED_MEASURES if k in d}
        return cls(**typed, other=d)


@dataclass
class CellResult:
    """One cell (stream x method x seed): its configuration, status, accuracy ``metrics``
    (docs/suites.md), ``curves``, ``measures``, ``timings`` and provenance."""

    cell_id: str
    status: str
    config: dict
    error: Optional[str] = None
    metrics: dict = field(default_factory=dict)
    curves: dict = field(default_factory=dict)
    measures: Measures = field(default_factory=Measures)
    timings: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    host: dict = field(default_factory=dict)
    stream_info: dict = field(default_factory=dict)
    started: Optional[str] = None
    finished: Optional[str] = None
    diverged: Optional[dict] = None
    collapsed: Optional[dict] = None
    resumed: Optional[dict] = None
    traceback: Optional[str] = None
    shared_from: Optional[dict] = None  # adopted from another run folder (compute once)
    schema_version: int = SCHEMA_VERSION

    OPTIONAL = ("stream_info", "diverged", "collapsed", "resumed", "traceback", "shared_from")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def seed(self) -> int:
        return int(self.config["seed"])

    def to_dict(self) -> dict:
        d = {
            "schema_version": self.schema_version,
            "cell_id": self.cell_id,
            "status": self.status,
            "error": self.error,
            "config": self.config,
            "metrics": self.metrics,
            "curves": self.curves,
            "measures": self.measures.to_dict(),
            "timings": self.timings,
            "versions": self.versions,
            "host": self.host,
            "started": self.started,
            "finished": self.finished,
        }
        d.update({k: getattr(self, k) for k in self.OPTIONAL if getattr(self, k)})
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CellResult":
        """The record of a saved cell; a file of an older schema is read through
        :func:`migrate`, one of a newer schema raises ValueError."""
        _require(d, ("cell_id", "status", "config"), "cell result")
        v = int(d.get("schema_version", 1))
        if v > SCHEMA_VERSION:
            raise ValueError(
                f"{d['cell_id']}: schema version {v} is newer than this library's "
                f"{SCHEMA_VERSION}: upgrade avalanche-neumod to read it"
            )
        if v < SCHEMA_VERSION:
            d = migrate(d)
        plain = ("error", "metrics", "curves", "timings", "versions", "host")
        return cls(
            cell_id=str(d["cell_id"]),
            status=str(d["status"]),
            config=d["config"],
            measures=Measures.from_dict(d.get("measures")),
            started=d.get("started"),
            finished=d.get("finished"),
            **{k: d[k] for k in plain if d.get(k) is not None},
            **{k: d[k] for k in cls.OPTIONAL if d.get(k) is not None},
        )


# --------------------------------------------------------------------------- migration

_V1_SG = {  # schema 1's lower-cased stability-gap names -> the evaluation's
    "avg_acc": "avg_ACC",
    "avg_min_acc": "avg_min_ACC",
    "wc_acc": "WC_ACC",
    "avg_sg": "avg_SG",
    "avg_sg_abs": "avg_SG_abs",
    "avg_recovery": "avg_recovery",
}
_V1_CONVENTIONS = {"de_lange": "delange", "ngm": "ngm"}
_V1_TRANSFER_COPIES = ("fkt", "bkt", "lca_0", "lca_0_f", "lca_0_b", "lca_f", "lca_b", "scores")


def migrate(d: dict) -> dict:
    """A schema-1 cell dict as a schema-:data:`SCHEMA_VERSION` one (a new dict).

    Schema 1 stored the transfer scores three ways (the plugin's flat ``scores``, lower-case
    ``lca_*`` copies, ``fkt``/``bkt`` lists) and the stability-gap scores lower-cased under
    ``de_lange``/``ngm``. Here the transfer record keeps its arrays and gets its scores from
    ``evaluation.transfer.transfer_summaries`` (computed once, when the stored record was
    scored), and the stability-gap scores get the evaluation's names and conventions.
    """
    v = int(d.get("schema_version", 1))
    if v != 1:
        raise ValueError(f"migrate reads schema version 1, got {v}")
    out = dict(d)
    meas = dict(d.get("measures") or {})
    t = meas.get("transfer")
    if t is not None:
        arrays = {k: w for k, w in t.items() if k not in _V1_TRANSFER_COPIES}
        rec = TransferRecord.from_arrays(arrays, score="scores" in t)
        meas["transfer"] = rec.to_dict()
    sg = meas.get("stability_gap")
    if sg is not None:
        sg = dict(sg)
        scores = {}
        for conv, s in (sg.get("scores") or {}).items():
            if conv not in _V1_CONVENTIONS:
                raise ValueError(f"{d.get('cell_id')}: unknown stability-gap convention {conv!r}")
            scores[_V1_CONVENTIONS[conv]] = {_V1_SG.get(k, k): w for k, w in s.items()}
        sg["scores"] = scores
        # schema 1 did not store the scoring settings: those the cell's measure had
        args = ((d.get("config") or {}).get("metrics") or {}).get("stability_gap") or {}
        sg.setdefault("windows", list(args.get("windows", SG_WINDOWS)))
        sg.setdefault("tolerance", float(args.get("tolerance", SG_TOLERANCE)))
        meas["stability_gap"] = sg
    out["measures"] = meas
    out["schema_version"] = SCHEMA_VERSION
    return out
