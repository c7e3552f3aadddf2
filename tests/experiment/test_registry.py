"""The registry holds our classes themselves (not import strings), loads them only on first
use, and the argument check at suite load uses them."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import avalanche_neumod
from avalanche_neumod import models, training
from avalanche_neumod.evaluation.neumosync_diagnostics import NeuMoSyncDiagnostics
from avalanche_neumod.experiment import cell_arguments, measures, registry
from avalanche_neumod.experiment.suite import expand, load_suite

# What result files have always recorded as each method's ``target``: a changed string
# would make ``neumod run --resume`` refuse every finished cell of an older run.
RECORDED_TARGETS = {
    "Naive": "avalanche.training:Naive",
    "EWC": "avalanche.training:EWC",
    "Replay": "avalanche.training:Replay",
    "SI": "avalanche.training:SynapticIntelligence",
    "LwF": "avalanche.training:LwF",
    "GEM": "avalanche.training:GEM",
    "FastNaive": "avalanche_neumod.training.template:FastNaive",
    "NeuMoSync": "avalanche_neumod.training.neumosync:NeuMoSync",
    "NGMSGD": "avalanche_neumod.training.ngm:NGMSGD",
    "CBP": "avalanche_neumod.training.strategies:CBP",
    "ReDo": "avalanche_neumod.training.strategies:ReDo",
    "CReLU": "avalanche_neumod.training.strategies:CReLU",
    "L2Init": "avalanche_neumod.training.strategies:L2Init",
    "L2InitEWC": "avalanche_neumod.training.strategies:L2InitEWC",
    "ShrinkPerturb": "avalanche_neumod.training.strategies:ShrinkPerturb",
    "MAML": "avalanche_neumod.training.maml:MAML",
    "NaiveTemperature": "avalanche_neumod.training.controls:NaiveTemperature",
    "NaiveScaledLR": "avalanche_neumod.training.controls:NaiveScaledLR",
}


def test_methods_are_our_classes_and_record_the_same_targets():
    assert registry.METHODS["NeuMoSync"].strategy is training.NeuMoSync
    assert registry.strategy_class(registry.METHODS["CBP"]) is training.CBP
    assert {n: registry.target(s) for n, s in registry.METHODS.items()} == RECORDED_TARGETS
    for spec in registry.METHODS.values():
        assert registry.resolve(registry.target(spec)) is spec.strategy  # what cell.py imports


def test_moved_classes_record_their_old_path_and_import_from_it():
    # one alias table: each moved class still imports from the path stored cells record
    assert registry.RECORDED_AS
    for now, recorded in registry.RECORDED_AS.items():
        assert registry.resolve(now) is registry.resolve(recorded)
        assert registry.import_path(registry.resolve(now)) == recorded
    assert training.NGMSGD.__module__ == "avalanche_neumod.training.ngm.strategy"


def test_our_methods_are_declared_beside_their_code():
    ours = {m.name: m for m in training.METHODS}
    assert set(ours) == {n for n, s in registry.METHODS.items() if s.kind == "ours"}
    for name, m in ours.items():
        assert registry.METHODS[name] is m
        # declared next to the strategy: in the module that defines its class
        home = vars(sys.modules[m.strategy.__module__]).values()
        assert any(v is m for v in home), name
    assert [n for n, m in registry.METHODS.items() if m.owns_optimizer] == ["NGMSGD"]
    assert ours["CBP"].plugin is training.CBPPlugin
    assert ours["NGMSGD"].plugin is training.GainModulationPlugin
    assert ours["NeuMoSync"].plugin is None  # its mechanism lives in the strategy


def test_every_declared_tunable_is_an_argument_of_the_strategy():
    for name, m in registry.METHODS.items():
        valid = cell_arguments.accepted(registry.strategy_class(m))
        if valid is None:  # the class takes **kwargs: nothing to compare against
            continue
        assert set(m.tunable) <= valid, (name, set(m.tunable) - valid)


def test_models_are_our_classes():
    assert registry.MODELS["mlp"].fn is models.MLP
    assert registry.MODELS["ngm_mlp"].fn is models.ngm_mlp
    fn, supplied = registry.model_receiver("convnet")
    assert fn is models.ConvNet and supplied == {"in_channels", "input_size", "num_classes"}
    net = registry.build_model("mlp", {"input_shape": (1, 2, 3), "num_classes": 4})
    linear = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert linear[0].in_features == 6 and linear[-1].out_features == 4


def test_user_paths_still_resolve_when_used():
    spec = registry.method_spec("avalanche_neumod.training:FastNaive")
    assert spec.kind == "user" and registry.target(spec) == "avalanche_neumod.training:FastNaive"
    assert registry.strategy_class(spec) is training.FastNaive
    assert spec.tunable is None and not spec.owns_optimizer  # every argument; the suite's
    with pytest.raises(registry.RegistryError, match="has no attribute 'Nope'"):
        registry.strategy_class(registry.method_spec("avalanche_neumod.training:Nope"))
    with pytest.raises(registry.RegistryError, match=r"unknown method 'Nope'.*CBP, CReLU"):
        registry.method_spec("Nope")


def test_every_measure_names_its_receiver():
    for m in measures.MEASURES.values():
        assert callable(m.receiver()), m.name
    assert measures.MEASURES["neumosync_diagnostics"].receiver() is NeuMoSyncDiagnostics


SUITE = """
name: s
defaults:
  model: {name: mlp, args: {hidden_sizes: [8]}}
streams:
  toy: {name: "toy:toy_stream", args: {n_experiences: 2}}
presets: {cpu: {}}
"""


def test_neumosync_diagnostics_args_checked_against_their_own_class(tmp_path):
    # Was checked against PlasticityMetric (an inherited import path), which takes ``tau``:
    # the typo passed the check and failed the cell. (The check is called on an expanded
    # cell directly: load_suite runs the same check.)
    p = tmp_path / "s.yaml"
    p.write_text(SUITE + "methods: {Naive: {}, NeuMoSync: {}}\n")
    cfg = expand(load_suite(p))[0]
    cfg["metrics"] = {"neumosync_diagnostics": {"samples": 8}}
    cell_arguments.check_cell(cfg, "s")
    cfg["metrics"] = {"neumosync_diagnostics": {"tau": 1}}
    with pytest.raises(
        cell_arguments.ArgumentError, match=r"unknown argument\(s\) tau; valid: samples, seed$"
    ):
        cell_arguments.check_cell(cfg, "s")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_importing_the_registry_and_suite_loads_neither_torch_nor_avalanche():
    loaded = _modules_after("import avalanche_neumod.experiment.suite")
    assert "avalanche_neumod.experiment.registry" in loaded
    assert not {"torch", "avalanche"} & loaded


def test_package_exports_resolve_lazily():
    # every lazily exported name is the subpackage's own object, and the list is complete
    for name, sub in avalanche_neumod._EXPORTS.items():
        assert getattr(avalanche_neumod, name) is getattr(getattr(avalanche_neumod, sub), name)
    assert avalanche_neumod.__all__ == sorted(avalanche_neumod._EXPORTS)
    assert set(avalanche_neumod.__all__) <= set(dir(avalanche_neumod))
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        avalanche_neumod.Nope  # noqa: B018
    loaded = _modules_after("import avalanche_neumod")
    assert not {"torch", "avalanche"} & loaded


def test_a_suite_may_ask_for_every_measure_the_runner_builds(tmp_path):
    from avalanche_neumod.experiment import measures
    from avalanche_neumod.experiment.suite import METRIC_NAMES, load_suite

    assert set(METRIC_NAMES) == set(measures.MEASURES)
    p = tmp_path / "s.yaml"
    p.write_text(
        "name: s\nseeds: [0]\nstreams: {toy: {name: 'toy:toy_stream'}}\n"
        "methods: {Naive: {}, NeuMoSync: {metrics: {neumosync_diagnostics: {}}}}\n"
        "presets: {cpu: {}}\n"
    )
    load_suite(p)  # accepted (it was refused as an unknown metric)
