"""Import path kept for users: NeuroSync lives in :mod:`.neumosync.mechanism` (eq. 3)."""

from .neumosync.mechanism import CONTEXTS, N_ALPHAS, LinearModulator, NeuroSync

__all__ = ["CONTEXTS", "N_ALPHAS", "LinearModulator", "NeuroSync"]
