"""The part CBP and ReDo share: a plugin that acts on the hidden units of the model it
trains, from their activity in training forwards.

:class:`UnitActivityPlugin` reads the units of ``strategy.model``
(:func:`~avalanche_neumod.models.units.require_hidden_units`: a model without any is
refused) and hooks one :class:`~avalanche_neumod.models.units.UnitRecorder` on them
at the start of each training experience (again when the model object changed), and
records training forwards only: the recorder is off during evaluation, including an
evaluation run in the middle of training (``eval_every``), so ``recorder.activity``
holds the most recent *training* batch and the mechanism costs no extra forward pass.
"""

from __future__ import annotations

from typing import Optional

from avalanche.core import SupervisedPlugin
from torch import nn

from ...models.units import HiddenUnits, UnitRecorder, require_hidden_units


class UnitActivityPlugin(SupervisedPlugin):
    """Base of the plugins that act on hidden units from recorded training activity.

    Subclasses set ``unit_user`` (the mechanism's name in refusals) and may extend
    :meth:`attach` (per-unit state) and :meth:`before_training_exp`.
    """

    unit_user = "this plugin"

    def __init__(self) -> None:
        super().__init__()
        self.units: list[HiddenUnits] = []
        self.recorder: Optional[UnitRecorder] = None
        self._model: Optional[nn.Module] = None

    def attach(self, model: nn.Module) -> None:
        """Read ``model``'s hidden units and hook the recorder (a model without hidden
        units raises ``UnsupportedModelError``: the mechanism would never act)."""
        self.detach()
        self.units = require_hidden_units(model, self.unit_user)
        self.recorder = UnitRecorder(self.units)
        self._model = model

    def detach(self) -> None:
        """Remove the recorder's hooks."""
        if self.recorder is not None:
            self.recorder.remove()
        self.recorder = None
        self._model = None

    # -- Avalanche hooks ------------------------------------------------------------------------
    def before_training_exp(self, strategy, **kwargs) -> None:
        if self._model is not strategy.model:
            self.attach(strategy.model)
        self.recorder.enabled = True

    def before_eval(self, strategy, **kwargs) -> None:
        if self.recorder is not None:
            self.recorder.enabled = False

    def after_eval(self, strategy, **kwargs) -> None:
        if self.recorder is not None:
            self.recorder.enabled = strategy.is_training
