"""Strategies, plugins and the fast training path."""

from .fast_data import FastDataPlugin, TensorBatchLoader
from .maml import MAML
from .neumosync import NeuMoSync
from .ngm import NGMSGD, baseline_optimizer, ngm_baseline, ngm_sgd_optimizer
from .optim_state import reset_optimizer_state, reset_unit_optimizer_state
from .plugins import (
    CBPPlugin,
    GainModulationPlugin,
    L2InitPlugin,
    ReDoPlugin,
    ShrinkPerturbPlugin,
)
from .strategies import CBP, CReLU, L2Init, L2InitEWC, ReDo, ShrinkPerturb
from .template import FastNaive, FastTemplate, with_fast_data

__all__ = [
    "CBP",
    "CBPPlugin",
    "CReLU",
    "FastDataPlugin",
    "FastNaive",
    "FastTemplate",
    "L2Init",
    "L2InitEWC",
    "L2InitPlugin",
    "GainModulationPlugin",
    "MAML",
    "NGMSGD",
    "NeuMoSync",
    "ReDo",
    "ReDoPlugin",
    "ShrinkPerturb",
    "ShrinkPerturbPlugin",
    "TensorBatchLoader",
    "baseline_optimizer",
    "ngm_baseline",
    "ngm_sgd_optimizer",
    "reset_optimizer_state",
    "reset_unit_optimizer_state",
    "with_fast_data",
]
