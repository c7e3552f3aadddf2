"""NaN / inf hyperparameters are refused at construction, like out-of-range ones."""

from __future__ import annotations

import math

import pytest
import torch

from avalanche_neumod.argument_rules import check_integer, check_real
from avalanche_neumod.evaluation.plasticity import PlasticityMetric, diagnose
from avalanche_neumod.evaluation.stability_gap import StabilityGapMetric
from avalanche_neumod.evaluation.subset_eval import SubsetEvaluator, experience_subsets
from avalanche_neumod.evaluation.transfer import KnowledgeTransferMetric
from avalanche_neumod.models import MLP
from avalanche_neumod.models.neumosync import NeuMoSyncNetwork
from avalanche_neumod.models.ngm_mlp import ngm_mlp
from avalanche_neumod.models.units import dormant_mask
from avalanche_neumod.training import MAML, L2Init, L2InitEWC, NeuMoSync, ReDo, ShrinkPerturb
from avalanche_neumod.training.ngm import baseline_optimizer, ngm_sgd_optimizer
from avalanche_neumod.training.ngm.modulation import GainModulationPlugin
from avalanche_neumod.training.plugins.l2init import L2InitPlugin
from avalanche_neumod.training.plugins.redo import ReDoPlugin
from avalanche_neumod.training.plugins.shrink_perturb import ShrinkPerturbPlugin
from avalanche_neumod.training.strategies import CReLU

NAN, INF = math.nan, math.inf


def _model() -> torch.nn.Module:
    return MLP(4, (3,), 2)


def _strategy(cls, **kw):
    m = _model()
    return cls(model=m, optimizer=torch.optim.SGD(m.parameters(), lr=0.1), **kw)


# "Owner argument" -> a builder taking the bad value
CASES = {
    "ReDoPlugin tau": lambda v: ReDoPlugin(tau=v),
    "ReDoPlugin F": lambda v: ReDoPlugin(F=v),
    "L2InitPlugin lam": lambda v: L2InitPlugin(lam=v),
    "ShrinkPerturbPlugin p": lambda v: ShrinkPerturbPlugin(p=v),
    "ShrinkPerturbPlugin sigma": lambda v: ShrinkPerturbPlugin(sigma=v),
    "GainModulationPlugin gamma": lambda v: GainModulationPlugin(eta=0.1, gamma=v),
    "GainModulationPlugin eta": lambda v: GainModulationPlugin(eta=v),
    "GainModulationPlugin g0": lambda v: GainModulationPlugin(eta=0.1, g0=v),
    "ReDo tau": lambda v: _strategy(ReDo, tau=v),
    "L2Init lam": lambda v: _strategy(L2Init, lam=v),
    "ShrinkPerturb sigma": lambda v: _strategy(ShrinkPerturb, sigma=v),
    "L2InitEWC ewc_lambda": lambda v: _strategy(L2InitEWC, ewc_lambda=v),
    "L2InitEWC decay_factor": lambda v: _strategy(
        L2InitEWC, ewc_lambda=1.0, mode="online", decay_factor=v
    ),
    "CReLU tol": lambda v: _strategy(CReLU, tol=v),
    "MAML inner_lr": lambda v: _strategy(MAML, inner_lr=v),
    "MAML inner_steps": lambda v: _strategy(MAML, inner_steps=v),
    "MAML support_fraction": lambda v: _strategy(MAML, support_fraction=v),
    "NeuMoSync lr": lambda v: NeuMoSync(model=_model(), lr=v),
    "NeuMoSync alpha_record_every": lambda v: NeuMoSync(model=_model(), alpha_record_every=v),
    "NeuMoSyncNetwork ema_decay": lambda v: NeuMoSyncNetwork(_model(), ema_decay=v),
    "NeuMoSyncNetwork alpha_scale": lambda v: NeuMoSyncNetwork(_model(), alpha_scale=v),
    "NeuMoSyncNetwork stats_decay": lambda v: NeuMoSyncNetwork(_model(), stats_decay=v),
    "NeuMoSync neurosync_lr": lambda v: NeuMoSync(model=_model(), neurosync_lr=v),
    "NeuMoSync lookahead_lr": lambda v: NeuMoSync(model=_model(), lookahead_lr=v),
    "ngm_sgd_optimizer lr": lambda v: ngm_sgd_optimizer(_model(), lr=v),
    "ngm_sgd_optimizer backbone_momentum": lambda v: ngm_sgd_optimizer(
        _model(), backbone_momentum=v
    ),
    "baseline_optimizer lr": lambda v: baseline_optimizer(_model(), "sgd", lr=v),
    "baseline_optimizer momentum": lambda v: baseline_optimizer(_model(), "msgd", momentum=v),
    "ngm_mlp hidden_std": lambda v: ngm_mlp(4, (3,), 2, hidden_std=v),
    "PlasticityMetric tau": lambda v: PlasticityMetric(tau=v),
    "PlasticityMetric samples": lambda v: PlasticityMetric(samples=v),
    "PlasticityMetric every": lambda v: PlasticityMetric(every=v),
    "diagnose tau": lambda v: diagnose(_model(), torch.zeros(2, 4), tau=v),
    "dormant_mask tau": lambda v: dormant_mask(torch.ones(2, 3), tau=v),
    "StabilityGapMetric eval_every": lambda v: StabilityGapMetric(experiences=[None], eval_every=v),
    "StabilityGapMetric samples_per_exp": lambda v: StabilityGapMetric(
        experiences=[None], samples_per_exp=v
    ),
    "StabilityGapMetric tolerance": lambda v: StabilityGapMetric(experiences=[None], tolerance=v),
    "StabilityGapMetric window": lambda v: StabilityGapMetric(experiences=[None], windows=(10, v)),
    "KnowledgeTransferMetric beta": lambda v: KnowledgeTransferMetric(
        experiences=[None, None], beta=v
    ),
    "KnowledgeTransferMetric eval_samples": lambda v: KnowledgeTransferMetric(
        experiences=[None, None], beta=1, eval_samples=v
    ),
    "SubsetEvaluator batch_size": lambda v: SubsetEvaluator({}, batch_size=v),
    "experience_subsets samples": lambda v: experience_subsets([], v, 0),
}


@pytest.mark.parametrize("value", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_non_finite_refused(case, value):
    name = case.split()[-1]
    with pytest.raises(ValueError, match=rf"{name}.*finite|{name}.*integer") as e:
        CASES[case](value)
    assert "got" in str(e.value)


def test_helpers():
    assert check_real("x", 2, 0.0) == 2.0 and isinstance(check_real("x", 2, 0.0), float)
    assert check_integer("k", 3, 1) == 3 and check_integer("k", None, 1, none_ok=True) is None
    for bad in (NAN, INF, True, "1", None):
        with pytest.raises(ValueError, match="x must be a finite number >= 0, got"):
            check_real("x", bad, 0.0)
    with pytest.raises(ValueError, match=r"must be a finite number in \(0, 1\), got 1"):
        check_real("x", 1, 0, 1, low_open=True, high_open=True)
    for bad in (1.5, 3.0, "3", NAN, INF, False, 0):  # an integral float is not an int
        with pytest.raises(ValueError, match="k must be an integer >= 1"):
            check_integer("k", bad, 1)
