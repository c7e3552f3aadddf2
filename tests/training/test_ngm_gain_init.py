"""Initial NGM gains: 1 by default (the authors' MLP), ``g0`` on request
(the authors' ResNet head), or a given value; invalid values raise."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from avalanche_neumod.models import MLP
from avalanche_neumod.training.ngm import NGMSGD
from avalanche_neumod.training.ngm.gains import attach_gains, gain_buffers, resolve_g_init
from avalanche_neumod.training.ngm.modulation import GainModulationPlugin


def _all(model: nn.Module, value: float) -> bool:
    return all(torch.allclose(g, torch.full_like(g, value)) for g in gain_buffers(model).values())


@pytest.mark.parametrize("g_init, want", [(None, 1.0), ("one", 1.0), ("g0", 2.0), (1.5, 1.5)])
def test_plugin_initial_gain(g_init, want):
    model = MLP(4, (3,), 2)
    kw = {} if g_init is None else {"g_init": g_init}
    plugin = GainModulationPlugin(eta=0.3, gamma=0.9, g0=2.0, **kw)
    plugin.attach(model)
    assert _all(model, want)
    # the first training forward: g = gamma * g_init + (1 - gamma) * g0 + eta * 0
    strategy = SimpleNamespace(model=model)
    plugin.before_forward(strategy)
    assert _all(model, 0.9 * want + 0.1 * 2.0)
    assert plugin.gain_history[next(iter(plugin.gain_history))] == pytest.approx([0.9 * want + 0.2])
    assert plugin.history()["g_init"] == (g_init or "one")


def test_ngmsgd_defaults_to_the_authors_mlp_init():
    model = MLP(4, (3,), 2)
    s = NGMSGD(model=model, eta=0.4, g0=2.0, train_mb_size=4, evaluator=None)
    assert _all(model, 1.0)
    assert s.gain_plugin.g_init == "one"
    model2 = MLP(4, (3,), 2)
    NGMSGD(model=model2, eta=0.4, g0=2.0, g_init="g0", train_mb_size=4, evaluator=None)
    assert _all(model2, 2.0)


def test_attach_gains_init():
    m = MLP(4, (3,), 2)
    assert all(float(g.mean()) == 1.0 for g in attach_gains(m, "all", 3.0).values())
    m = MLP(4, (3,), 2)
    assert all(float(g.mean()) == 3.0 for g in attach_gains(m, "head", 3.0, "g0").values())


@pytest.mark.parametrize("bad", ["zero", "G0", 0.0, -1.0, math.inf, math.nan, True, None])
def test_bad_g_init_raises(bad):
    with pytest.raises(ValueError):
        resolve_g_init(bad, 1.0)
    with pytest.raises(ValueError):
        GainModulationPlugin(eta=0.1, g_init=bad)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="one, g0"):
        GainModulationPlugin(eta=0.1, g_init="unit")
