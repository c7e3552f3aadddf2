"""NeuMoSync's network: :mod:`.mechanism` (every equation, the network, NeuroSync and the
neuron features) and :mod:`.fast` (its speed paths, each tested against the equation it
computes). The strategy that trains it is :class:`avalanche_neumod.training.NeuMoSync`."""

from .fast import OUTPUT_MIX_MAX_BATCH, TransposedAttention, prefer_foreach
from .mechanism import (
    ACTIVITY_NAMES,
    ALPHA_KINDS,
    CONTEXTS,
    DEFAULT_ALPHA_SCALE,
    FEATURE_NORMS,
    HEAD_BIASES,
    N_ACTIVITY,
    N_ALPHAS,
    N_WEIGHT,
    WEIGHT_NAMES,
    LinearModulator,
    NeuMoSyncNetwork,
    NeuronFeatures,
    NeuronLayer,
    NeuroSync,
    activity_statistics,
    sinusoidal_code,
    symlog,
)

__all__ = [
    "ACTIVITY_NAMES",
    "ALPHA_KINDS",
    "CONTEXTS",
    "DEFAULT_ALPHA_SCALE",
    "FEATURE_NORMS",
    "HEAD_BIASES",
    "N_ACTIVITY",
    "N_ALPHAS",
    "N_WEIGHT",
    "OUTPUT_MIX_MAX_BATCH",
    "WEIGHT_NAMES",
    "LinearModulator",
    "NeuMoSyncNetwork",
    "NeuronFeatures",
    "NeuronLayer",
    "NeuroSync",
    "TransposedAttention",
    "activity_statistics",
    "prefer_foreach",
    "sinusoidal_code",
    "symlog",
]
