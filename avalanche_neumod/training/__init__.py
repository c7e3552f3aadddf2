"""Strategies, plugins and the fast training path."""

from .controls import (
    NAIVE_SCALED_LR_METHOD,
    NAIVE_TEMPERATURE_METHOD,
    NaiveScaledLR,
    NaiveTemperature,
)
from .fast_data import FastDataPlugin, TensorBatchLoader
from .maml import MAML, MAML_METHOD
from .method import OWNS_OPTIMIZER, Method, ReportsMechanism, mechanism_hooks
from .neumosync import NEUMOSYNC_METHOD, NeuMoSync
from .ngm import NGMSGD, NGMSGD_METHOD, baseline_optimizer, ngm_baseline, ngm_sgd_optimizer
from .optim_state import reset_optimizer_state, reset_unit_optimizer_state
from .plugins import (
    CBPPlugin,
    GainModulationPlugin,
    L2InitPlugin,
    ReDoPlugin,
    ShrinkPerturbPlugin,
)
from .strategies import (
    CBP,
    CBP_METHOD,
    CRELU_METHOD,
    L2INIT_METHOD,
    L2INITEWC_METHOD,
    REDO_METHOD,
    SHRINK_PERTURB_METHOD,
    CReLU,
    L2Init,
    L2InitEWC,
    ReDo,
    ShrinkPerturb,
)
from .template import FAST_NAIVE_METHOD, FastNaive, FastTemplate, with_fast_data

#: This library's methods, each declared beside its code (``experiment/registry.py`` builds
#: its table from these and from Avalanche's strategies).
METHODS: tuple[Method, ...] = (
    FAST_NAIVE_METHOD,
    NEUMOSYNC_METHOD,
    NGMSGD_METHOD,
    CBP_METHOD,
    REDO_METHOD,
    CRELU_METHOD,
    L2INIT_METHOD,
    L2INITEWC_METHOD,
    SHRINK_PERTURB_METHOD,
    MAML_METHOD,
    NAIVE_TEMPERATURE_METHOD,
    NAIVE_SCALED_LR_METHOD,
)

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
    "METHODS",
    "Method",
    "NaiveScaledLR",
    "NaiveTemperature",
    "NGMSGD",
    "NeuMoSync",
    "OWNS_OPTIMIZER",
    "ReportsMechanism",
    "ReDo",
    "ReDoPlugin",
    "ShrinkPerturb",
    "ShrinkPerturbPlugin",
    "TensorBatchLoader",
    "baseline_optimizer",
    "mechanism_hooks",
    "ngm_baseline",
    "ngm_sgd_optimizer",
    "reset_optimizer_state",
    "reset_unit_optimizer_state",
    "with_fast_data",
]
