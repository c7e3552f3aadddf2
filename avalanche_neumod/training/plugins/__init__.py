"""One plugin per mechanism; each works inside any Avalanche strategy.

NGM-SGD's plugin lives in its package (:mod:`avalanche_neumod.training.ngm`) and is
exported here too.
"""

from ..ngm.modulation import GainModulationPlugin
from .cbp import CBPPlugin
from .l2init import L2InitPlugin
from .redo import ReDoPlugin
from .shrink_perturb import ShrinkPerturbPlugin
from .unit_activity import UnitActivityPlugin

__all__ = [
    "CBPPlugin",
    "GainModulationPlugin",
    "L2InitPlugin",
    "ReDoPlugin",
    "ShrinkPerturbPlugin",
    "UnitActivityPlugin",
]
