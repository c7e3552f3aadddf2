"""Suites: YAML files of streams x methods x seeds x hyperparameters, with presets.

A suite file (the shipped ones are ``avalanche_neumod/suites/<name>.yaml``, package data;
format in ``docs/suites.md``) has the top-level keys ``name``, ``description``, ``seeds``,
``defaults``, ``streams``, ``methods``, ``report`` and ``presets``. A preset (``cpu``,
``paper``) is deep-merged over the top level (mappings merge, everything else replaces,
``null`` removes a key). :func:`expand` turns the result into one fully resolved configuration per
(stream, method, seed) cell: what a cell runs, and what its result file records.

Loading refuses, with a message naming the place: seeds that are not a list of
distinct integers (:func:`parse_seeds`), two (stream, method) pairs that map to one
cell id, and any argument the code receiving it does not take (``cell_arguments``).
"""

from __future__ import annotations

import copy
import inspect
import os
import re
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import yaml

from ..argument_rules import check_integer
from . import cell_arguments, measures, registry

SUITE_KEYS = {
    "name",
    "description",
    "seeds",
    "defaults",
    "streams",
    "methods",
    "report",
    "presets",
    "tune",
}
DEFAULT_KEYS = {"model", "train", "optimizer", "metrics", "fast_data", "eval"}
STREAM_KEYS = DEFAULT_KEYS | {"name", "args", "methods", "label", "wrappers"}
METHOD_KEYS = DEFAULT_KEYS | {"name", "args", "label", "tune"}
# --- fairness ---------------------------------------------------------------------------------
# A method whose declaration says OWNS_OPTIMIZER (NGM-SGD's gain-modulated SGD) keeps it: the
# suite's optimizer does not replace it. Every other method, NeuMoSync included, trains with
# the suite's optimizer (NeuMoSync's own Adam default is for standalone use only).
NAIVE_NAMES = ("Naive", "FastNaive")
TRAIN_DEFAULTS = {"mb_size": 16, "epochs": 1, "eval_mb_size": 256, "device": "cpu"}
METRIC_NAMES = tuple(measures.MEASURES)  # one source: the measures the runner can build


class SuiteError(ValueError):
    """A suite that cannot be loaded or expanded; the message says where and why."""


def package_suites() -> Path:
    """The folder of the suites shipped with the package (its ``suites`` data folder)."""
    return Path(str(resources.files("avalanche_neumod") / "suites"))


def suite_dirs() -> list[Path]:
    """Where suites are looked up by name: ``$NEUMOD_SUITES``, ``./benchmarks``, the package's."""
    dirs = []
    if os.environ.get("NEUMOD_SUITES"):
        dirs += [Path(p) for p in os.environ["NEUMOD_SUITES"].split(os.pathsep) if p]
    dirs += [Path.cwd() / "benchmarks", package_suites()]
    out: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def _suites_in(d: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(d.glob("*.yaml"))}


def shipped_suites() -> dict[str, Path]:
    """Suite name -> file, for the suites shipped with the package."""
    return _suites_in(package_suites())


def available_suites() -> dict[str, Path]:
    """Suite name -> file, the first found in :func:`suite_dirs` order."""
    found: dict[str, Path] = {}
    for d in suite_dirs():
        for name, p in _suites_in(d).items():
            found.setdefault(name, p)
    return found


def find_suite(name_or_path: Union[str, Path]) -> Path:
    """A suite file from a path or a name; an unknown name lists the available suites."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            hint = ""
            if p.stem in available_suites():  # a missing path to a suite known by name
                hint = f"; the suite {p.stem!r} is found by its name: use {p.stem!r}"
            raise SuiteError(f"suite file not found: {p}{hint}")
        return p
    suites = available_suites()
    if str(name_or_path) not in suites:
        raise SuiteError(
            f"unknown suite {str(name_or_path)!r}; valid suites: {', '.join(sorted(suites))}"
        )
    return suites[str(name_or_path)]


def read_yaml(path: Path) -> dict:
    """Parse ``path``; a syntax error names the file, line and column."""
    text = Path(path).read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(e, "problem", None) or str(e)
        context = getattr(e, "context", None)
        msg = f"{context}, {problem}" if context else problem
        raise SuiteError(
            f"malformed YAML at {where} (line {mark.line + 1 if mark else '?'}): {msg}"
        ) from e
    if not isinstance(data, dict):
        raise SuiteError(f"{path}: a suite must be a YAML mapping, got {type(data).__name__}")
    return data


def deep_merge(base: Any, over: Any) -> Any:
    """``over`` merged into a copy of ``base``: mappings merge, ``None`` deletes, else replace."""
    if not isinstance(base, dict) or not isinstance(over, dict):
        return copy.deepcopy(over)
    out = copy.deepcopy(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif k in out and isinstance(out[k], dict) and isinstance(v, dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def merge_optimizer(base: dict, over: Optional[dict]) -> dict:
    """An optimizer override: a different ``name`` replaces, the same name merges."""
    if not over:
        return dict(base)
    if "name" in over and over["name"] != base.get("name"):
        return dict(over)
    return {**base, **over}


def check_keys(d: Any, valid: set, where: str, error: type[SuiteError] = SuiteError) -> None:
    """Raise ``error`` unless ``d`` is a mapping whose keys are all in ``valid``."""
    if not isinstance(d, dict):
        raise error(f"{where} must be a mapping, got {type(d).__name__}")
    bad = set(d) - valid
    if bad:
        raise error(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, bad)))}; "
            f"valid keys: {', '.join(sorted(valid))}"
        )


_ID_SAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


def cell_id(stream_key: str, method_key: str, seed: int) -> str:
    """The cell's id (also its result file's stem)."""
    s = _ID_SAFE.sub("-", stream_key)
    m = _ID_SAFE.sub("-", method_key)
    return f"{s}__{m}__seed{seed}"


def check_cell_ids(stream_keys: Iterable[str], method_keys: Iterable[str], where: str) -> None:
    """Refuse two (stream, method) pairs whose cell ids (file names) would be the same,
    letter case ignored (case-insensitive file systems): one result would overwrite the other."""
    seen: dict[str, tuple[str, str]] = {}
    for sk in stream_keys:
        for mk in method_keys:
            cid = cell_id(str(sk), str(mk), 0).lower()
            if cid in seen:
                (s0, m0) = seen[cid]
                raise SuiteError(
                    f"{where}: stream {s0!r} x method {m0!r} and stream {sk!r} x method {mk!r} "
                    f"map to the same cell id {cell_id(str(sk), str(mk), 0)!r} (ids keep letters, "
                    "digits and _.+- of the keys, other characters become '-', case is ignored)"
                    ": rename one of the keys (its label can stay the same)"
                )
            seen[cid] = (sk, mk)


def parse_seeds(value: Any, where: str = "seeds") -> list[int]:
    """The seeds as a list of distinct integers >= 0; anything else is refused.

    ``None`` is ``[0]``. A bare integer is refused rather than guessed (``seeds: 5`` could
    mean seed 5 or five seeds): the message shows both spellings.
    """
    if value is None:
        return [0]
    hint = "a list of distinct integers >= 0, e.g. [0, 1, 2]"
    if isinstance(value, bool) or not isinstance(value, (list, tuple)):
        extra = (
            f" (write [{value}] for seed {value}, or [{', '.join(map(str, range(value)))}] "
            f"for {value} seeds)"
            if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 10
            else ""
        )
        raise SuiteError(f"{where} must be {hint}; got {value!r}{extra}")
    if not value:
        raise SuiteError(f"{where} must be {hint}; got an empty list")
    bad = [s for s in value if isinstance(s, bool) or not isinstance(s, int) or s < 0]
    if bad:
        raise SuiteError(
            f"{where} must be {hint}; not integers >= 0: {', '.join(repr(b) for b in bad)}"
        )
    dup = sorted({s for s in value if list(value).count(s) > 1})
    if dup:
        raise SuiteError(
            f"{where} repeats seed(s) {', '.join(map(str, dup))}: each seed is one cell "
            "(one result file), so a repeated seed would run twice into the same file"
        )
    return [int(s) for s in value]


@dataclass
class Suite:
    """A loaded suite with a preset applied."""

    name: str
    preset: str
    path: str
    description: str
    seeds: list[int]
    defaults: dict
    streams: dict
    methods: dict
    report: dict = field(default_factory=dict)
    presets: list[str] = field(default_factory=list)
    tune: dict = field(default_factory=dict)  # top-level tuning settings (tuning.py)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "preset": self.preset,
            "path": self.path,
            "description": self.description,
            "seeds": self.seeds,
            "defaults": self.defaults,
            "streams": self.streams,
            "methods": self.methods,
            "report": self.report,
            "tune": self.tune,
            # JSON files are written with sorted keys: keep the suite's order explicitly
            "stream_order": list(self.streams),
            "method_order": list(self.methods),
        }


def load_suite(name_or_path: Union[str, Path], preset: str = "cpu") -> Suite:
    """Load a suite by name or path and apply ``preset`` (unknown ones list the valid ones)."""
    path = find_suite(name_or_path)
    raw = read_yaml(path)
    check_keys(raw, SUITE_KEYS, f"{path}")
    presets = raw.get("presets") or {}
    if preset not in presets:
        raise SuiteError(
            f"unknown preset {preset!r} for suite {raw.get('name', path.stem)!r}; "
            f"valid presets: {', '.join(sorted(presets)) or '(none)'}"
        )
    body = {k: v for k, v in raw.items() if k != "presets"}
    pre = presets[preset] or {}
    check_keys(pre, SUITE_KEYS - {"presets", "name"}, f"{path}: preset {preset!r}")
    merged = deep_merge(body, pre)
    suite = Suite(
        name=str(merged.get("name", path.stem)),
        preset=preset,
        path=str(path),
        description=str(merged.get("description", "")).strip(),
        seeds=parse_seeds(merged.get("seeds"), f"{path}: seeds"),
        defaults=merged.get("defaults") or {},
        streams=merged.get("streams") or {},
        methods=merged.get("methods") or {},
        report=merged.get("report") or {},
        presets=sorted(presets),
        tune=merged.get("tune") or {},
    )
    validate(suite)
    return suite


def validate(suite: Suite) -> None:
    """Check structure and every name (streams, methods, models, optimizers, metrics)."""
    where = f"suite {suite.name!r} (preset {suite.preset!r})"
    check_keys(suite.defaults, DEFAULT_KEYS, f"{where}: defaults")
    if not suite.streams:
        raise SuiteError(f"{where} has no streams")
    if not suite.methods:
        raise SuiteError(f"{where} has no methods")
    for key, s in suite.streams.items():
        s = s or {}
        check_keys(s, STREAM_KEYS, f"{where}: stream {key!r}")
        registry.check_stream_name(s.get("name", key))
        for w in s.get("wrappers") or []:
            wname = w if isinstance(w, str) else (w or {}).get("name", "")
            if wname not in registry.WRAPPERS and ":" not in wname:
                raise registry.unknown("stream wrapper", wname, registry.WRAPPERS)
        for mk in s.get("methods") or {}:
            if mk not in suite.methods:
                raise SuiteError(
                    f"{where}: stream {key!r} overrides unknown method {mk!r}; "
                    f"the suite's methods: {', '.join(suite.methods)}"
                )
    for key, m in suite.methods.items():
        m = m or {}
        check_keys(m, METHOD_KEYS, f"{where}: method {key!r}")
        registry.check_method_name(m.get("name", key))
    check_cell_ids(suite.streams, suite.methods, where)
    for cfg in expand(suite, seeds=suite.seeds[:1]):  # names depend on (stream, method) only
        if cfg["model"]["name"] not in registry.MODELS and ":" not in cfg["model"]["name"]:
            raise registry.unknown("model", cfg["model"]["name"], registry.MODELS)
        opt = cfg["optimizer"].get("name", "sgd")
        if opt not in registry.OPTIMIZERS and not registry.builds_own_optimizer(cfg):
            raise registry.unknown("optimizer", cfg["optimizer"]["name"], registry.OPTIMIZERS)
        for m in cfg["metrics"]:
            if m not in METRIC_NAMES:
                raise registry.RegistryError(
                    f"unknown metric {m!r}; valid metrics: {', '.join(METRIC_NAMES)} "
                    "(accuracy is always recorded)"
                )
        try:
            cell_arguments.check_cell(
                cfg, f"{where}: stream {cfg['stream_key']!r} x method {cfg['method_key']!r}"
            )
        except cell_arguments.ArgumentError as e:
            raise SuiteError(str(e)) from e
    check_fair(suite)
    warn_optimizer_rule(suite)
    validate_tune(suite)


# --- the suite's `tune` block: its keys, defaults and checks (the procedure: tuning.py) ------
TUNE_KEYS = {"seeds", "target", "per", "grid", "keep", "extend", "require"}
REQUIRE_KEYS = {"metric", "min", "streams"}
TARGET_DEFAULT = {"metric": "avg_accuracy", "mode": "max"}
MODES = ("max", "min")
PER = ("stream", "suite")


class TuningError(SuiteError):
    """A tuning grid or its results that cannot be used (the message says which)."""


def tune_settings(tune: Optional[dict]) -> dict:
    """The top-level ``tune`` mapping with its defaults filled in."""
    tune = dict(tune or {})
    target = {**TARGET_DEFAULT, **(tune.get("target") or {})}
    keep = tune.get("keep")
    return {
        "seeds": [int(s) for s in tune.get("seeds") or []],
        "target": target,
        "per": tune.get("per", "stream"),
        "grid": dict(tune.get("grid") or {}),
        "keep": None if keep is None else keep,
        "extend": tune.get("extend", 0),
        "require": dict(tune["require"]) if isinstance(tune.get("require"), dict) else None,
    }


def method_grids(methods: dict, tune: Optional[dict] = None) -> dict[str, dict[str, list]]:
    """Method key -> its grid (axis name -> values): the suite's shared axes
    (``tune.grid``) then the method's own, for every method that has any."""
    shared = tune_settings(tune)["grid"]
    out = {}
    for k, m in methods.items():
        own = (m or {}).get("tune") or {}
        if shared or own:
            out[k] = {**shared, **{a: v for a, v in own.items() if a not in shared}}
    return out


def _tunable(method_name: str) -> Optional[set[str]]:
    """The method's arguments a suite may tune (besides ``lr`` and ``optimizer.*``): its
    declaration's ``tunable``; for a user's class (``tunable=None``) its explicit constructor
    arguments; None when they cannot be read (checked again when the cell runs)."""
    try:
        spec = registry.method_spec(method_name)
        if spec.tunable is not None:
            return set(spec.tunable)
        params = inspect.signature(registry.strategy_class(spec).__init__).parameters
    except Exception:  # noqa: BLE001 - checked again when the cell runs
        return None
    return {
        n
        for n, p in params.items()
        if n not in ("self", "model", "optimizer")
        and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


def validate_tune(suite: Suite) -> None:
    """Check the tuning settings and every grid: tuning seeds disjoint from the reported
    seeds, a known target mode, non-empty value lists without repeats, known argument
    names, ``keep`` and ``extend`` counts."""
    where = f"suite {suite.name!r} (preset {suite.preset!r})"
    raw = suite.tune or {}
    check_keys(raw, TUNE_KEYS, f"{where}: tune", TuningError)
    s = tune_settings(raw)
    if s["target"]["mode"] not in MODES:
        raise TuningError(f"{where}: tune.target.mode must be one of {MODES}, got {s['target']}")
    if not isinstance(s["target"]["metric"], str) or not s["target"]["metric"]:
        raise TuningError(f"{where}: tune.target.metric must be a metric name")
    if s["per"] not in PER:
        raise TuningError(f"{where}: tune.per must be one of {PER}, got {s['per']!r}")
    for k, lo in (("keep", 1), ("extend", 0)):
        v = s[k]
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < lo):
            raise TuningError(f"{where}: tune.{k} must be an integer >= {lo}, got {v!r}")
    req = raw.get("require")
    if req is not None:
        if not isinstance(req, dict):
            raise TuningError(f"{where}: tune.require must be a mapping {sorted(REQUIRE_KEYS)}")
        check_keys(req, REQUIRE_KEYS, f"{where}: tune.require", TuningError)
        if not isinstance(req.get("metric"), str) or not req["metric"]:
            raise TuningError(f"{where}: tune.require.metric must be a metric name or path")
        lo = req.get("min")
        if isinstance(lo, bool) or not isinstance(lo, (int, float)):
            raise TuningError(f"{where}: tune.require.min must be a number, got {lo!r}")
        streams = req.get("streams")
        if streams is not None and (
            not isinstance(streams, list) or not all(isinstance(x, str) for x in streams)
        ):
            raise TuningError(f"{where}: tune.require.streams must be a list of stream keys")
        unknown = sorted(set(streams or []) - set(suite.streams))
        if unknown:
            raise TuningError(
                f"{where}: tune.require.streams names {unknown}, not streams of this suite "
                f"({', '.join(suite.streams)})"
            )
    if not isinstance(raw.get("grid", {}) or {}, dict):
        raise TuningError(f"{where}: tune.grid must be a mapping of lists")
    overlap = sorted(set(s["seeds"]) & set(suite.seeds))
    if overlap:
        raise TuningError(
            f"{where}: tuning seeds {overlap} are also reported seeds; tuning seeds must be "
            f"disjoint from the reported seeds {suite.seeds}"
        )
    for mk, m in suite.methods.items():
        own = (m or {}).get("tune")
        if own and not isinstance(own, dict):
            raise TuningError(f"{where}: method {mk!r}: tune must be a mapping of lists")
    grids = method_grids(suite.methods, raw)
    if grids and not s["seeds"]:
        raise TuningError(
            f"{where}: methods {', '.join(grids)} declare a tune grid but the suite has no "
            "`tune: {seeds: [...]}` (tuning seeds disjoint from the reported seeds)"
        )
    for mk, grid in grids.items():
        name = (suite.methods[mk] or {}).get("name", mk)
        names = _tunable(name)
        for k, vals in grid.items():
            if not isinstance(vals, list) or not vals:
                raise TuningError(
                    f"{where}: method {mk!r}: tune.{k} must be a non-empty list, got {vals!r}"
                )
            if len({repr(v) for v in vals}) != len(vals):
                raise TuningError(f"{where}: method {mk!r}: tune.{k} repeats a value: {vals}")
            if k == "lr" or k.startswith("optimizer."):
                if k == "lr" and any(not (isinstance(v, (int, float)) and v > 0) for v in vals):
                    raise TuningError(f"{where}: method {mk!r}: tune.lr values must be > 0")
                continue
            if names is not None and k not in names:
                raise TuningError(
                    f"{where}: method {mk!r}: unknown tune key {k!r}: {name} may tune lr, "
                    f"optimizer.<setting>{''.join(', ' + n for n in sorted(names))} (its "
                    "declaration's `tunable`)"
                )


class OptimizerRuleWarning(UserWarning):
    """A method row whose key or label names an optimizer the row no longer trains with."""


def warn_optimizer_rule(suite: Suite) -> None:
    """Warn about a method row that relied on its method's own optimizer: its key or label
    names an optimizer (``NeuMoSync-Adam: {name: NeuMoSync}``) but, by the fairness rule,
    it trains with the suite's optimizer unless its own ``optimizer:`` names one."""
    where = f"suite {suite.name!r} (preset {suite.preset!r})"
    names = sorted(registry.OPTIMIZERS)
    for cfg in expand(suite, seeds=suite.seeds[:1]):
        got = cfg["optimizer"].get("name", "sgd")
        text = f"{cfg['method_key']} {cfg['method_label']}".lower()
        said = [n for n in names if re.search(rf"(?<![a-z]){n}(?![a-z])", text)]
        if said and got not in said and not registry.builds_own_optimizer(cfg):
            warnings.warn(
                f"{where}: method {cfg['method_key']!r} ({cfg['method']['name']}) names "
                f"{said[0]!r} but trains with {got!r} on stream {cfg['stream_key']!r}: every "
                "method that does not own its optimizer trains with the suite's (a method's own "
                "default optimizer is for standalone use); add `optimizer: {name: "
                f"{said[0]}}}` to the row to train it with {said[0]!r}",
                OptimizerRuleWarning,
                stacklevel=2,
            )


def check_fair(suite: Suite) -> None:
    """Fair by construction: the suite has a Naive row (``Naive`` or ``FastNaive``
    without arguments), and on every stream every method trains with the Naive row's
    optimizer family unless its own mapping names another one explicitly (an optimizer
    study, visible in the YAML and in the report); a method that owns its optimizer
    (``OWNS_OPTIMIZER`` in its declaration) keeps it."""
    where = f"suite {suite.name!r} (preset {suite.preset!r})"
    naive = [
        k
        for k, m in suite.methods.items()
        if (m or {}).get("name", k) in NAIVE_NAMES and not (m or {}).get("args")
    ]
    if not naive:
        raise SuiteError(
            f"{where} has no Naive row: add `Naive: {{}}` to its methods, so that every method "
            "is compared with plain fine-tuning under the same optimizer"
        )
    cells = expand(suite, seeds=suite.seeds[:1])
    for sk in suite.streams:
        by_m = {c["method_key"]: c for c in cells if c["stream_key"] == sk}
        family = by_m[naive[0]]["optimizer"].get("name", "sgd")
        over = (suite.streams[sk] or {}).get("methods") or {}
        for mk, c in by_m.items():
            name = c["optimizer"].get("name", "sgd")
            explicit = "name" in ((suite.methods[mk] or {}).get("optimizer") or {}) or "name" in (
                (over.get(mk) or {}).get("optimizer") or {}
            )
            own = registry.builds_own_optimizer(c)
            if name != family and not own and not explicit:
                raise SuiteError(
                    f"{where}: on stream {sk!r} method {mk!r} would train with {name!r} but "
                    f"the Naive row {naive[0]!r} with {family!r}; one optimizer family for all "
                    "methods (name another one in the method's own `optimizer:` to study it)"
                )


def _model_cfg(m: Any) -> dict:
    if m is None:
        return {"name": "mlp", "args": {}}
    if isinstance(m, str):
        return {"name": m, "args": {}}
    return {"name": m.get("name", "mlp"), "args": dict(m.get("args") or {})}


def _layer(cfg: dict, layer: dict) -> dict:
    """Apply one layer of settings (defaults, stream, method) to a cell config."""
    out = dict(cfg)
    if "model" in layer:
        m = layer["model"]
        if isinstance(m, str) or (isinstance(m, dict) and "name" in m):
            new = _model_cfg(m)
            if new["name"] == cfg["model"]["name"]:
                new["args"] = deep_merge(cfg["model"]["args"], new["args"])
            out["model"] = new
        elif isinstance(m, dict):
            out["model"] = {
                "name": cfg["model"]["name"],
                "args": deep_merge(cfg["model"]["args"], m.get("args") or {}),
            }
    if "train" in layer:
        out["train"] = {**cfg["train"], **(layer["train"] or {})}
    if "optimizer" in layer:
        out["optimizer"] = merge_optimizer(cfg["optimizer"], layer["optimizer"])
    if "metrics" in layer:
        out["metrics"] = deep_merge(cfg["metrics"], layer["metrics"] or {})
        out["metrics"] = {k: (v or {}) for k, v in out["metrics"].items() if v is not False}
    if "fast_data" in layer:
        out["fast_data"] = bool(layer["fast_data"])
    if "eval" in layer:
        out["eval"] = {**cfg["eval"], **(layer["eval"] or {})}
    return out


def _select(kind: str, wanted: Optional[Iterable[str]], keys: list[str], suite: str) -> list[str]:
    """The ``keys`` named in ``wanted`` (all when ``None``), in the suite's order."""
    if wanted is None:
        return keys
    wanted = list(wanted)
    bad = [w for w in wanted if w not in keys]
    if bad:
        raise SuiteError(
            f"unknown {kind}(s) {', '.join(bad)} for suite {suite!r}; "
            f"valid {kind}s: {', '.join(keys)}"
        )
    return [k for k in keys if k in wanted]


def expand(
    suite: Suite,
    seeds: Optional[Iterable[int]] = None,
    methods: Optional[Iterable[str]] = None,
    streams: Optional[Iterable[str]] = None,
) -> list[dict]:
    """One resolved configuration per (stream, method, seed) cell, in a stable order.

    Precedence (later wins): the method's registry defaults, the suite's
    ``defaults``, the stream's settings, the method's settings, the stream's
    per-method overrides (``streams.<s>.methods.<m>``).
    """
    seeds = suite.seeds if seeds is None else parse_seeds(list(seeds), "--seeds")
    method_keys = _select("method", methods, list(suite.methods), suite.name)
    stream_keys = _select("stream", streams, list(suite.streams), suite.name)
    cells = []
    for sk in stream_keys:
        s = suite.streams[sk] or {}
        for mk in method_keys:
            m = suite.methods[mk] or {}
            m_over = (s.get("methods") or {}).get(mk) or {}
            method_name = m.get("name", mk)
            spec = registry.method_spec(method_name)
            own = spec.owns_optimizer  # recorded as {"name": "own"}
            cfg = {
                "model": {"name": "mlp", "args": {}},
                "train": dict(TRAIN_DEFAULTS),
                "optimizer": {"name": spec.optimizer} if own else dict(spec.optimizer),
                "metrics": {},
                "fast_data": True,
                "eval": {"every_experience": True},
            }
            for i, layer in enumerate((suite.defaults, s, m, m_over)):
                layer = layer or {}
                if own and i < 2:  # defaults and stream optimizers do not replace its own
                    layer = {k: v for k, v in layer.items() if k != "optimizer"}
                cfg = _layer(cfg, layer)
            margs = deep_merge(dict(spec.args), m.get("args") or {})
            margs = deep_merge(margs, m_over.get("args") or {})
            for seed in seeds:
                cells.append(
                    {
                        "cell_id": cell_id(sk, mk, int(seed)),
                        "suite": suite.name,
                        "preset": suite.preset,
                        "stream_key": sk,
                        "method_key": mk,
                        "stream_label": s.get("label", sk),
                        "method_label": m.get("label", mk),
                        "seed": int(seed),
                        "stream": {
                            "name": s.get("name", sk),
                            "args": dict(s.get("args") or {}),
                            "wrappers": copy.deepcopy(s.get("wrappers") or []),
                        },
                        "method": {
                            "name": method_name,
                            "target": registry.target(spec),
                            "kind": spec.kind,
                            "args": margs,
                        },
                        **copy.deepcopy(cfg),
                    }
                )
    return cells


def truncate_cell(
    cfg: dict,
    experiences: int = 2,
    iterations: int = 20,
    test_size: int = 256,
    batch_size: Optional[int] = None,
) -> dict:
    """A short copy of the cell ``cfg`` (from :func:`expand`): the same stream, model,
    method, metrics and device, cut to at most ``experiences`` experiences of about
    ``iterations`` minibatches (one epoch) and about ``test_size`` test samples each, for
    checks that a cell runs (e.g. on a device), not for results.

    Cuts what the stream generator takes: ``n_experiences``, ``iterations`` (NGM
    streams), ``train_size``/``test_size`` and ``n_samples`` (samples), or
    ``train_per_class``/``test_per_class`` (class splits, sized for up to 100 classes);
    ``train.epochs`` becomes 1, the transfer probes' ``beta`` at most 2 (it needs that many
    minibatches per experience), and ``batch_size`` (when given) caps the minibatch size
    (``train.mb_size``, or the stream's ``batch_size`` where the cell takes the stream's).
    """
    experiences = check_integer("experiences", experiences, 1)
    iterations = check_integer("iterations", iterations, 1)
    test_size = check_integer("test_size", test_size, 1)
    out = copy.deepcopy(cfg)
    args = out["stream"]["args"]
    try:
        params = inspect.signature(registry.stream_factory(out["stream"]["name"])).parameters
        taken = {k: p.default for k, p in params.items()}
    except (TypeError, ValueError):  # pragma: no cover - a callable without a signature
        taken = {}
    taken.update(args)
    if batch_size is not None:
        batch_size = check_integer("batch_size", batch_size, 1)
        if out["train"]["mb_size"] == "stream":
            args["batch_size"] = min(int(taken.get("batch_size") or batch_size), batch_size)
            taken["batch_size"] = args["batch_size"]
        else:
            out["train"]["mb_size"] = min(int(out["train"]["mb_size"]), batch_size)
    bs = out["train"]["mb_size"]
    bs = int(taken.get("batch_size") or 128) if bs == "stream" else int(bs)
    caps = {
        "n_experiences": experiences,
        "iterations": iterations,
        "train_size": iterations * bs,
        "test_size": test_size,
        "n_samples": iterations * bs,
        "train_per_class": max(1, -(-iterations * bs // 100)),
        "test_per_class": max(1, test_size // 100),
    }
    for key, cap in caps.items():
        if key in taken:
            cur = taken[key]
            ok = isinstance(cur, int) and not isinstance(cur, bool)
            args[key] = min(cur, cap) if ok else cap
    out["train"]["epochs"] = 1
    transfer = out["metrics"].get("transfer")
    if isinstance(transfer, dict):
        transfer["beta"] = min(int(transfer.get("beta", 2)), 2)
    return out
