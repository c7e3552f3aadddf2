"""NGM collapse detection: entropy pinned at ln C (gains at their bound) or
input-independent logits for ``collapse_patience`` iterations -> a warning and a flag."""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from avalanche_neumod.training.ngm.modulation import GainModulationPlugin, _input_blind


def _run(plugin, logits_fn, n):
    model = nn.Sequential(nn.Linear(3, 4))
    strategy = SimpleNamespace(model=model, mb_output=None)
    plugin.before_training(strategy)
    for t in range(n):
        plugin.before_forward(strategy)
        strategy.mb_output = logits_fn(t)
        plugin.after_update(strategy)
    return model


def _uniform(t):
    return torch.zeros(8, 4)  # H = ln 4 exactly, the same for every example


def _healthy(t):
    g = torch.Generator().manual_seed(t)
    return 3 * torch.randn(8, 4, generator=g)


def test_entropy_at_maximum_for_patience_iterations_collapses():
    plugin = GainModulationPlugin(eta=0.4, gamma=0.9, collapse_patience=20)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        _run(plugin, _uniform, 19)
        assert not plugin.collapsed and not w
        _run(plugin, _uniform, 30)
    assert plugin.collapsed
    assert sum(issubclass(x.category, RuntimeWarning) for x in w) == 1  # warned once
    info = plugin.collapse_info
    assert info["iteration"] == 20 and info["entropy"] == pytest.approx(math.log(4))
    assert "entropy" in info["reason"]
    assert info["gain_bound"] == pytest.approx(1 + 0.4 * math.log(4) / 0.1)
    assert plugin.history()["collapsed"] == info


def test_input_independent_logits_collapse_even_at_low_entropy():
    plugin = GainModulationPlugin(eta=0.4, collapse_patience=10)
    row = torch.tensor([[6.0, 0.0, 0.0, 0.0]])
    with pytest.warns(RuntimeWarning, match="NGM collapse"):
        _run(plugin, lambda t: row.expand(8, 4).clone(), 10)
    assert plugin.collapsed and "input" in plugin.collapse_info["reason"]


def test_healthy_and_interrupted_runs_do_not_collapse():
    plugin = GainModulationPlugin(eta=0.4, collapse_patience=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _run(plugin, _healthy, 50)
        # 9 saturated iterations, one healthy one, 9 again: never 10 in a row
        _run(plugin, lambda t: _uniform(t) if t % 10 else _healthy(t), 40)
        # a batch of one cannot tell whether logits depend on the input
        _run(plugin, lambda t: torch.tensor([[6.0, 0.0, 0.0, 0.0]]), 30)
    assert not plugin.collapsed and plugin.collapse_info is None


def test_input_blind_means_every_example_has_the_same_logits():
    row = torch.tensor([[6.0, 0.0, 0.0, 0.0]])
    same = row.expand(8, 4).clone()
    assert _input_blind(same) and _input_blind(same.view(2, 4, 4))
    one_off = same.clone()
    one_off[5, 2] = 1e-6  # one logit of one example differs
    assert not _input_blind(one_off)
    with_nan = same.clone()
    with_nan[0, 0] = float("nan")  # NaN differs from everything: not "input-blind"
    assert not _input_blind(with_nan)
    assert not _input_blind(row)  # a batch of one: nothing to compare


def test_patience_zero_disables():
    plugin = GainModulationPlugin(eta=0.4, collapse_patience=0)
    _run(plugin, _uniform, 100)
    assert not plugin.collapsed


@pytest.mark.parametrize("kw", [{"collapse_patience": -1}, {"collapse_patience": 2.5},
                                {"collapse_tol": 0.0}, {"collapse_tol": 1.0}])  # fmt: skip
def test_bad_collapse_arguments_raise(kw):
    with pytest.raises(ValueError):
        GainModulationPlugin(eta=0.4, **kw)
