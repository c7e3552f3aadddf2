"""UnitActivityPlugin, the recorder lifecycle CBP and ReDo share: training forwards only."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from avalanche_neumod.models import MLP
from avalanche_neumod.models.units import UnsupportedModelError
from avalanche_neumod.training.plugins import CBPPlugin, ReDoPlugin


@pytest.mark.parametrize("cls", [CBPPlugin, ReDoPlugin])
def test_recorder_keeps_training_batches_only_and_follows_the_model(cls):
    torch.manual_seed(0)
    plugin = cls()
    strategy = SimpleNamespace(model=MLP(6, (8, 8), 3), is_training=True)
    plugin.before_training_exp(strategy)
    strategy.model(torch.randn(5, 6))
    assert {a.shape[0] for a in plugin.recorder.activity.values()} == {5}
    plugin.before_eval(strategy)  # an evaluation inside training (eval_every)
    strategy.model(torch.randn(7, 6))
    assert {a.shape[0] for a in plugin.recorder.activity.values()} == {5}
    plugin.after_eval(strategy)  # back to training: recording again
    strategy.model(torch.randn(3, 6))
    assert {a.shape[0] for a in plugin.recorder.activity.values()} == {3}
    strategy.is_training = False  # an evaluation after training: stays off
    plugin.before_eval(strategy)
    plugin.after_eval(strategy)
    assert not plugin.recorder.enabled
    old, strategy.model, strategy.is_training = strategy.model, MLP(6, (4,), 3), True
    plugin.before_training_exp(strategy)  # a new model: its units, the old one unhooked
    assert [hu.n_units for hu in plugin.units] == [4]
    old(torch.randn(9, 6))
    assert plugin.recorder.activity == {}
    strategy.model(torch.randn(2, 6))
    assert {a.shape[0] for a in plugin.recorder.activity.values()} == {2}


@pytest.mark.parametrize("cls, name", [(CBPPlugin, "CBP"), (ReDoPlugin, "ReDo")])
def test_a_model_without_hidden_units_is_refused_by_name(cls, name):
    with pytest.raises(UnsupportedModelError, match=name):
        cls().attach(torch.nn.Sequential(torch.nn.Linear(4, 2)))
