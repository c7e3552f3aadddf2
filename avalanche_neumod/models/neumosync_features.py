"""Import path kept for users: the neuron features live in :mod:`.neumosync.mechanism`
(eq. 1)."""

from .neumosync.mechanism import (
    ACTIVITY_NAMES,
    FEATURE_NORMS,
    N_ACTIVITY,
    N_WEIGHT,
    WEIGHT_NAMES,
    NeuronFeatures,
    activity_statistics,
    sinusoidal_code,
    symlog,
)

__all__ = [
    "ACTIVITY_NAMES",
    "FEATURE_NORMS",
    "N_ACTIVITY",
    "N_WEIGHT",
    "WEIGHT_NAMES",
    "NeuronFeatures",
    "activity_statistics",
    "sinusoidal_code",
    "symlog",
]
