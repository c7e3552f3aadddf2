"""The strategy wrappers take their plugin's arguments by name (training/argument_forwarding.py)."""

from __future__ import annotations

import inspect

import pytest
import torch

from avalanche_neumod.models import MLP
from avalanche_neumod.training.strategies import CBP, L2Init, ReDo, ShrinkPerturb


@pytest.mark.parametrize(
    "cls, attribute, given",
    [
        (CBP, "cbp", {"rho": 0.5, "m": 3, "sampling": "floor_bernoulli"}),
        (ReDo, "redo", {"tau": 0.2, "F": 7, "every": "both"}),
        (L2Init, "l2init", {"lam": 0.3}),
        (ShrinkPerturb, "shrink_perturb", {"p": 0.2, "sigma": 0.05}),
    ],
)
def test_plugin_arguments_are_named_forwarded_and_checked(cls, attribute, given):
    plugin_cls = type(
        getattr(cls(model=MLP(4, (5,), 2), optimizer=_sgd(), evaluator=None), attribute)
    )
    params = inspect.signature(cls).parameters
    for name, p in inspect.signature(plugin_cls).parameters.items():
        assert params[name].default == p.default, name  # named in the strategy's signature
    model = MLP(4, (5,), 2)
    s = cls(model=model, optimizer=_sgd(model), train_mb_size=3, evaluator=None, **given)
    plugin = getattr(s, attribute)
    assert {k: getattr(plugin, k) for k in given} == given
    assert plugin in s.plugins and s.train_mb_size == 3
    name = next(iter(given))
    with pytest.raises(ValueError, match=name):  # the plugin validates its arguments
        cls(model=model, optimizer=_sgd(model), evaluator=None, **{name: -1})
    with pytest.raises(TypeError, match="rhoo"):  # a typo reaches no one silently
        cls(model=model, optimizer=_sgd(model), evaluator=None, rhoo=1)


def _sgd(model=None):
    model = model or MLP(4, (5,), 2)
    return torch.optim.SGD(model.parameters(), lr=0.1)


def test_the_suite_argument_check_accepts_forwarded_arguments():
    """What the suite checks at load (``experiment.cell_arguments.accepted``) includes the
    plugin's and the network's arguments next to the template's."""
    from avalanche_neumod.experiment.cell_arguments import accepted
    from avalanche_neumod.training.neumosync import NeuMoSync

    assert {"rho", "m", "sampling", "train_mb_size", "criterion"} <= accepted(CBP)
    assert {"tau", "F", "every", "eval_every"} <= accepted(ReDo)
    assert {"consolidation", "d_model", "objective", "train_mb_size"} <= accepted(NeuMoSync)


def test_wrappers_pass_no_positional_arguments_to_avalanche():
    """Avalanche warns (PositionalArgumentsDeprecatedWarning) when a strategy's
    ``__init__`` gets positional arguments: our wrappers pass their plugins by name."""
    import warnings

    from avalanche_neumod.models import MLP
    from avalanche_neumod.training import CBP, L2InitEWC

    model = MLP(4, (3,), 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CBP(model=model, optimizer=opt, rho=0.1)
        L2InitEWC(model=model, optimizer=opt, ewc_lambda=1.0)
