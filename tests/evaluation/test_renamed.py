"""Former metric class names: the one class each, with a DeprecationWarning."""

from __future__ import annotations

import importlib

import pytest

from avalanche_neumod.evaluation import KnowledgeTransferMetric, StabilityGapMetric
from avalanche_neumod.evaluation.renamed import RENAMED

FORMER = {
    "StabilityGapTracker": StabilityGapMetric,
    "KnowledgeTransferPlugin": KnowledgeTransferMetric,
}


@pytest.mark.parametrize("name", sorted(FORMER))
@pytest.mark.parametrize("where", ["avalanche_neumod.evaluation", "module"])
def test_former_name_is_the_one_class_and_warns(name, where):
    if where == "module":
        where = f"avalanche_neumod.evaluation.{RENAMED[name][0]}"
    module = importlib.import_module(where)
    with pytest.warns(DeprecationWarning, match=FORMER[name].__name__):
        cls = getattr(module, name)
    assert cls is FORMER[name]


def test_the_table_names_every_former_name_and_nothing_else():
    assert set(RENAMED) == set(FORMER)
    with pytest.raises(AttributeError):
        importlib.import_module("avalanche_neumod.evaluation").NoSuchMetric  # noqa: B018
    with pytest.raises(AttributeError):  # a former name belongs to its own module
        importlib.import_module("avalanche_neumod.evaluation.transfer").StabilityGapTracker  # noqa: B018


def test_former_plugin_use_still_records_the_same_curves(make_pmnist, small_strategy):
    """``plugins=[StabilityGapTracker(...)]`` then ``to_dict()`` (the former runner's way)
    records what the metric records in the EvaluationPlugin, bit for bit."""
    import avalanche_neumod.evaluation as ev

    bm = make_pmnist(n_train=64, n_test=40)
    with pytest.warns(DeprecationWarning):
        old_sg = ev.StabilityGapTracker(bm.test_stream, samples_per_exp=20, eval_every=2)
    with pytest.warns(DeprecationWarning):
        old_kt = ev.KnowledgeTransferPlugin(bm.test_stream, beta=2, eval_samples=20)
    sg = StabilityGapMetric(bm.test_stream, samples_per_exp=20, eval_every=2)
    kt = KnowledgeTransferMetric(bm.test_stream, beta=2, eval_samples=20)
    for where in ({"plugins": [old_sg, old_kt]}, {"metrics": [sg, kt]}):
        s = small_strategy(**where)  # one run after the other, each from the same seed
        for exp in bm.train_stream:
            s.train(exp)
    assert old_sg.to_dict() == sg.to_dict()
    drop = {"probe_seconds": 0}
    assert old_kt.complete and old_kt.to_dict() | drop == kt.to_dict() | drop
