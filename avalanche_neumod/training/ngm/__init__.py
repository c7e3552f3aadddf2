"""NGM-SGD, SGD with entropy-driven gain modulation (Rodriguez-Garcia et al.; docs/ngm.md).

Read top to bottom:

- :mod:`.gains`: the gain layers, ``z = (x @ W.T) * g + b`` (a per-unit buffer put on a
  model's ``Linear``/``Conv2d`` layers in place);
- :mod:`.modulation`: :class:`GainModulationPlugin`, the mechanism
  ``g <- gamma g + (1 - gamma) g0 + eta H`` with its history and collapse detection, for any
  Avalanche strategy;
- :mod:`.strategy`: :class:`NGMSGD` (the fast template + the plugin + the authors'
  optimiser), the study's baseline optimisers and the method's declaration
  :data:`NGMSGD_METHOD`.
"""

from .gains import (
    GAIN_LAYERS,
    GainConv2d,
    GainLinear,
    attach_gains,
    gain_buffers,
    gain_layers,
    remove_gains,
    resolve_g_init,
    resolve_layers,
)
from .modulation import GainModulationPlugin, softmax_entropy
from .strategy import (
    BASELINE_OPTIMIZERS,
    NGMSGD,
    NGMSGD_METHOD,
    baseline_optimizer,
    ngm_baseline,
    ngm_sgd_optimizer,
)

__all__ = [
    "BASELINE_OPTIMIZERS",
    "GAIN_LAYERS",
    "GainConv2d",
    "GainLinear",
    "GainModulationPlugin",
    "NGMSGD",
    "NGMSGD_METHOD",
    "attach_gains",
    "baseline_optimizer",
    "gain_buffers",
    "gain_layers",
    "ngm_baseline",
    "ngm_sgd_optimizer",
    "remove_gains",
    "resolve_g_init",
    "resolve_layers",
    "softmax_entropy",
]
