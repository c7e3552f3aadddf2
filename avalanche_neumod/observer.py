"""The observer contract: plugins that watch training without taking part in it.

A bottom module (it imports nothing of ours), so training, evaluation and
experiment code may all use it.

A plugin that only records or reports (a training monitor, a tracker of
accuracy curves, a probe driver) derives from :class:`Observer` next to its
Avalanche base class::

    class MyTracker(Observer, SupervisedPlugin):
        ...

Training must not depend on an observer's presence, so copies of a strategy
made to train on the side (the probes' forks,
``avalanche_neumod.evaluation.probes.fork_strategy``) leave every observer
out: a probe neither feeds nor triggers them. Plugins that are not ours and
cannot derive from :class:`Observer` are left out by passing their types as
``exclude=`` to the fork.
"""

from __future__ import annotations


class Observer:
    """Mixin marking a plugin that observes training and never changes it.

    Forks of a strategy (probes) drop observers instead of copying them.
    """

    __slots__ = ()


__all__ = ["Observer"]
