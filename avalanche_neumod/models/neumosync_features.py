"""NeuMoSync neuron features f_i (reconstructed, our decisions: docs/neumosync.md).

Each neuron i (a Linear output feature or a Conv2d output channel) gets

    f_i = [ pos_i ; symlog(activity_i) ; log1p(weights_i) ; e_i ]

- ``pos_i``: a learned embedding of the neuron's layer plus a fixed sinusoidal
  code of its relative index ``i / (n - 1)`` in the layer (both ``position_size``);
- ``activity_i``: running means over training batches (no gradient) of the
  neuron's mean activation, mean |activation|, activation std, fraction active
  (> 0) and ReDo score ``s_i = mean|h_i| / mean_j mean|h_j|`` (j over its layer);
- ``weights_i``: ``||theta_i||``, ``||phi_i||``, ``||theta_i - phi_i||`` (weights and
  bias of the neuron, detached: they describe the state, they carry no gradient);
- ``e_i``: a learnable embedding (``embedding_size``), trained end to end.

Normalisation (ours): the statistics are passed through ``symlog(x) = sign(x)
log(1 + |x|)`` (``log1p`` for the non-negative norms), which keeps their sign
and order, compresses large norms and activations, and keeps magnitudes
comparable across layers and over time (a
per-batch z-score would hide a global drift of the network, which is exactly
what NeuroSync should see). The learned projection to d_model follows in
:mod:`.neurosync`.

Variant ``feature_norm`` (ours, issue 13): with ``"symlog"`` [default] the
statistics enter as above. Measured on trained networks, the neurons of one
layer differ far less in these features than the layers differ from each other,
and the alphas came out nearly uniform within a layer; ``"layer"`` standardises
each of the 8 statistics within its layer, ``z = (x - mean_layer) / (std_layer +
1e-5)`` after symlog, so that what distinguishes a neuron from its layer is on
the unit scale (the global drift is then invisible); ``"both"`` feeds both (8
more features).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .units import redo_scores_of_means

N_ACTIVITY = 5  # mean, mean |.|, std, fraction active, ReDo score
FEATURE_NORMS = ("symlog", "layer", "both")
N_WEIGHT = 3  # ||theta||, ||phi||, ||theta - phi||
ACTIVITY_NAMES = ("mean", "mean_abs", "std", "frac_active", "redo_score")
WEIGHT_NAMES = ("theta_norm", "phi_norm", "theta_phi_dist")


def symlog(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) * log(1 + |x|)``."""
    return torch.sign(x) * torch.log1p(x.abs())


def sinusoidal_code(n: int, size: int) -> torch.Tensor:
    """``(n, size)`` code of relative positions ``r = i / (n - 1)``: sin/cos at ``pi * 2^k``."""
    r = torch.arange(n, dtype=torch.float32) / max(n - 1, 1)
    freqs = math.pi * 2.0 ** torch.arange((size + 1) // 2, dtype=torch.float32)
    ang = r[:, None] * freqs[None, :]
    code = torch.stack((ang.sin(), ang.cos()), dim=-1).flatten(1)
    return code[:, :size]


def _mean_std(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column means and (population) standard deviations, two-pass. On the CPU this is
    about 10x faster than ``torch.std_mean`` over dim 0 for a few hundred columns."""
    mean = rows.mean(0)
    centred = rows - mean
    return mean, (centred * centred).mean(0).sqrt_()


def activity_statistics(rows: torch.Tensor) -> torch.Tensor:
    """Per-neuron statistics of one layer's activity ``(samples, n)`` -> ``(n, 5)``."""
    mean, std = _mean_std(rows)
    mean_abs = rows.abs().mean(0)
    frac = (rows > 0).float().mean(0)
    redo = redo_scores_of_means(mean_abs)  # ReDo score (Sokar et al. 2023, eq. 1)
    return torch.stack((mean, mean_abs, std, frac, redo), dim=1)


class NeuronFeatures(nn.Module):
    """Feature vectors of all neurons of a network, layer after layer.

    Args:
        layer_sizes: neurons per layer, in forward order.
        position_size: size of the positional part (layer embedding + sinusoidal code).
        embedding_size: size of the learnable per-neuron embedding e_i.
        stats_decay: running-mean rate of the activity statistics, in [0, 1)
            (``s <- d * s + (1 - d) * batch``; the first batch initialises them).
        feature_norm: ``"symlog"`` [default], ``"layer"`` or ``"both"`` (module docstring).
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        position_size: int = 8,
        embedding_size: int = 8,
        stats_decay: float = 0.99,
        feature_norm: str = "symlog",
    ):
        super().__init__()
        if feature_norm not in FEATURE_NORMS:
            raise ValueError(f"unknown feature_norm {feature_norm!r}; valid: {list(FEATURE_NORMS)}")
        self.feature_norm = feature_norm
        if len(layer_sizes) < 1 or any(n < 1 for n in layer_sizes):
            raise ValueError(f"layer sizes must be positive, got {list(layer_sizes)}")
        if position_size < 1 or embedding_size < 1:
            raise ValueError(
                f"position_size and embedding_size must be positive, got {position_size}, "
                f"{embedding_size}"
            )
        if not 0.0 <= stats_decay < 1.0:
            raise ValueError(f"stats_decay must be in [0, 1), got {stats_decay}")
        self.layer_sizes = tuple(int(n) for n in layer_sizes)
        self.n_neurons = sum(self.layer_sizes)
        self.stats_decay = float(stats_decay)
        self.position_size = position_size
        self.embedding_size = embedding_size
        layer_index = torch.cat(
            [torch.full((n,), k, dtype=torch.long) for k, n in enumerate(self.layer_sizes)]
        )
        self.register_buffer("layer_index", layer_index)
        self.register_buffer(
            "layer_onehot",
            nn.functional.one_hot(layer_index, len(self.layer_sizes)).float(),
            persistent=False,
        )
        self.register_buffer(
            "position_code", torch.cat([sinusoidal_code(n, position_size) for n in layer_sizes])
        )
        # (N, L): column k averages over layer k's neurons
        self.register_buffer(
            "layer_average", self.layer_onehot / self.layer_onehot.sum(0), persistent=False
        )
        self.register_buffer("activity", torch.zeros(self.n_neurons, N_ACTIVITY))
        self.register_buffer("activity_ready", torch.zeros((), dtype=torch.bool))
        # symlog(activity), refreshed with the statistics (computed once, not per forward)
        self.register_buffer(
            "activity_features", torch.zeros(self.n_neurons, N_ACTIVITY), persistent=False
        )
        self._register_load_state_dict_pre_hook(self._drop_cache)
        self.layer_embedding = nn.Embedding(len(self.layer_sizes), position_size)
        nn.init.normal_(self.layer_embedding.weight, std=0.1)
        self.embedding = nn.Parameter(0.1 * torch.randn(self.n_neurons, embedding_size))

    @property
    def size(self) -> int:
        """Length of f_i."""
        n_stats = (N_ACTIVITY + N_WEIGHT) * (2 if self.feature_norm == "both" else 1)
        return self.position_size + n_stats + self.embedding_size

    def layer_standardise(self, x: torch.Tensor) -> torch.Tensor:
        """Each column of ``x`` ``(N, k)`` standardised within each layer:
        ``(x - mean_layer) / (std_layer + 1e-5)`` (population std)."""
        mean = self.layer_onehot @ (self.layer_average.T @ x)
        centred = x - mean
        var = self.layer_onehot @ (self.layer_average.T @ (centred * centred))
        return centred / (var.sqrt() + 1e-5)

    def _drop_cache(self, *args, **kwargs) -> None:
        self._cache_valid = False

    @torch.no_grad()
    def update_activity(self, layer_rows: Sequence[torch.Tensor]) -> None:
        """Fold one training batch into the running statistics.

        ``layer_rows[k]`` is layer k's activity as ``(samples, n_k)``. Layers with
        the same number of rows are processed together (one set of ops).
        """
        batch = self.batch_statistics(layer_rows)
        if not bool(self.activity_ready):
            self.activity.copy_(batch)
            self.activity_ready.fill_(True)
        else:  # s <- d s + (1 - d) batch
            self.activity.lerp_(batch, 1.0 - self.stats_decay)
        self.activity_features.copy_(symlog(self.activity))
        self._cache_valid = True

    def batch_statistics(self, layer_rows: Sequence[torch.Tensor]) -> torch.Tensor:
        """``(n_neurons, 5)`` statistics of one batch, vectorised over neurons."""
        if all(r.shape[0] == layer_rows[0].shape[0] for r in layer_rows):
            rows = torch.cat(list(layer_rows), dim=1).float()  # (samples, N)
            mean, std = _mean_std(rows)
            mean_abs = rows.abs().mean(0)
            frac = (rows > 0).sum(0) / rows.shape[0]
            # ReDo score s_i = mean|h_i| / (mean over i's layer of mean|h_j|)
            redo = redo_scores_of_means(mean_abs, self.layer_onehot)
            return torch.stack((mean, mean_abs, std, frac, redo), dim=1)
        return torch.cat([activity_statistics(r.float()) for r in layer_rows])

    def forward(self, weight_stats: torch.Tensor) -> torch.Tensor:
        """All f_i as ``(n_neurons, size)``, given ``weight_stats`` ``(n_neurons, 3)``
        (non-negative norms: ``symlog`` is ``log1p`` there)."""
        if not getattr(self, "_cache_valid", False):
            with torch.no_grad():
                self.activity_features.copy_(symlog(self.activity))
            self._cache_valid = True
        pos = torch.addmm(self.position_code, self.layer_onehot, self.layer_embedding.weight)
        stats = torch.cat((self.activity_features, torch.log1p(weight_stats.detach())), dim=1)
        if self.feature_norm == "layer":
            stats = self.layer_standardise(stats)
        elif self.feature_norm == "both":
            stats = torch.cat((stats, self.layer_standardise(stats)), dim=1)
        return torch.cat((pos, stats, self.embedding), dim=1)
