"""One plugin per mechanism; each works inside any Avalanche strategy."""

from .cbp import CBPPlugin
from .gain_modulation import GainModulationPlugin
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
