"""The method declaration and the hooks through which a mechanism reports
(``training/method.py``)."""

from __future__ import annotations

import pytest
import torch
from avalanche.core import SupervisedPlugin

from avalanche_neumod.models import MLP
from avalanche_neumod.training import (
    CBP,
    NGMSGD,
    OWNS_OPTIMIZER,
    CBPPlugin,
    FastNaive,
    GainModulationPlugin,
    L2InitPlugin,
    Method,
    NeuMoSync,
    ReDoPlugin,
    ReportsMechanism,
    ShrinkPerturbPlugin,
    mechanism_hooks,
)


class _Activity(SupervisedPlugin):
    def mechanism_activity(self, strategy):
        return {"a": 1}


def _sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1)


def test_hooks_come_from_the_strategy_then_its_plugins_each_once():
    m = MLP(4, [8], 3)
    p = _Activity()
    s = FastNaive(model=m, optimizer=_sgd(m), plugins=[p, p])
    hooks = mechanism_hooks(s, "mechanism_activity")
    assert [h.__self__ for h in hooks] == [p]
    assert mechanism_hooks(s, "mechanism_history") == []
    with pytest.raises(ValueError, match="unknown hook 'mechanism_activities'"):
        mechanism_hooks(s, "mechanism_activities")
    n = NeuMoSync(model=MLP(4, [8], 3), alpha_record_every=1)
    assert [h.__self__ for h in mechanism_hooks(n, "mechanism_history")] == [n]  # the strategy
    assert n.mechanism_history() == {}  # nothing recorded yet


def test_our_mechanisms_implement_the_protocol():
    for plugin in (CBPPlugin(), ReDoPlugin(), L2InitPlugin(), ShrinkPerturbPlugin()):
        assert callable(getattr(plugin, "mechanism_activity", None)), type(plugin).__name__
    g = GainModulationPlugin(eta=0.3)
    # history and failure; no activity (a new key would change the stored NGM cells)
    assert not isinstance(g, ReportsMechanism) and not hasattr(g, "mechanism_activity")
    assert set(g.mechanism_history()) == {"gains"}
    assert g.mechanism_failure() is None
    g.collapsed, g.collapse_info = True, {"reason": "r", "iteration": 3}
    assert g.mechanism_failure() == {"reason": "r", "iteration": 3}
    m = MLP(4, [8], 3)
    s = NGMSGD(model=m, eta=0.3)
    assert [h.__self__ for h in mechanism_hooks(s, "mechanism_failure")] == [s.gain_plugin]
    c = CBP(model=m, optimizer=_sgd(m))
    assert c.cbp.mechanism_activity(c) == {"cbp_replaced": 0}


def test_method_declaration_checks_itself():
    d = Method("X", FastNaive)
    assert d.optimizer == {"name": "sgd", "lr": 0.01} and not d.owns_optimizer
    assert Method("Y", NGMSGD, optimizer=OWNS_OPTIMIZER).owns_optimizer
    assert Method("Z", FastNaive, tunable=["a"]).tunable == ("a",)
    with pytest.raises(ValueError, match="unknown kind 'mine'"):
        Method("X", FastNaive, kind="mine")
    with pytest.raises(ValueError, match="optimizer must be a config dict or OWNS_OPTIMIZER"):
        Method("X", FastNaive, optimizer="adam")
