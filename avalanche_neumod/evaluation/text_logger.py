"""A text logger that prints train-phase values in the training section.

Avalanche's ``TextLogger`` prints the values it has collected only at
``after_training_epoch`` ("Epoch N ended."), ``after_eval_exp`` ("> Eval on
experience ... ended.") and ``after_eval``. A value emitted at ``after_training_exp``
(Avalanche's own ``WeightCheckpoint``, this library's per-experience scores and
diagnostics, which must see the state after the method's end-of-experience hooks)
or at ``after_training`` (stream-level train values, e.g. the knowledge-transfer
scores, which need every experience trained) therefore appears under the next eval
experience. :class:`PhasedTextLogger` also prints at those two callbacks, mirroring
the eval side: "> Training on experience k ended." and, after "-- >> End of training
phase << --", the stream-level values (as ``after_eval`` prints
``Top1_Acc_Stream/eval_phase/...`` after "-- >> End of eval phase << --").
"""

from __future__ import annotations

from avalanche.evaluation.metric_utils import stream_type
from avalanche.logging import InteractiveLogger, TextLogger


class PhasedTextMixin:
    """Print a ``TextLogger``'s collected values also at ``after_training_exp`` and
    ``after_training`` (put it before the ``TextLogger`` class in the bases)."""

    def after_training_exp(self, strategy, metric_values, **kwargs) -> None:
        super().after_training_exp(strategy, metric_values, **kwargs)
        if self.metric_vals:
            exp_id = strategy.experience.current_experience
            stream = stream_type(strategy.experience)
            print(f"> Training on experience {exp_id} from {stream} stream ended.", file=self.file)
            self.print_current_metrics()
            self.metric_vals = {}

    def after_training(self, strategy, metric_values, **kwargs) -> None:
        super().after_training(strategy, metric_values, **kwargs)
        self.print_current_metrics()
        self.metric_vals = {}


class PhasedTextLogger(PhasedTextMixin, TextLogger):
    """``TextLogger`` printing values emitted at ``after_training_exp``/``after_training``
    in the training section (same constructor: ``file=sys.stdout``)."""


class PhasedInteractiveLogger(PhasedTextMixin, InteractiveLogger):
    """``InteractiveLogger`` (progress bars, stdout) with :class:`PhasedTextLogger`'s sections."""
