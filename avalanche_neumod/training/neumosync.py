"""The NeuMoSync strategy (reconstructed, every decision ours: docs/neumosync.md).

One training iteration: the loss is the criterion (cross-entropy) of the
InferenceNetwork's output (alphas from the minibatch); one optimizer updates
theta, the learnable neuron features and NeuroSync together (plain backprop,
no meta-learning loop); then the ConsolidatedNetwork takes its EMA step and the
activity statistics absorb the batch's activity. Evaluation runs the
InferenceNetwork with alphas from the evaluation batch and updates nothing.

Variants (ours, issue 13; docs/neumosync.md):

- ``neurosync_lr``: NeuroSync, the neuron embeddings and the other modulator
  parameters get their own learning rate (a second parameter group of the
  default Adam or of the given optimizer); theta keeps its learning rate.
- ``objective="lookahead"``: each minibatch is split in halves A and B. With the
  alphas of the whole batch, the loss on A gives ``g = dL_A/dw_inf``; one
  plasticity-modulated step ``theta' = theta - eta * alpha_SM * g`` (``eta =
  lookahead_lr``; ``alpha_SM g`` is exactly ``dL_A/dtheta``) is taken inside the
  graph, and B is evaluated by the InferenceNetwork built on theta'. The loss is
  the mean over the batch, ``(|A| L_A(theta) + |B| L_B(theta')) / |A + B|``, so
  alpha_SM receives ``-eta g . dL_B/dtheta'``: it grows where a step on A helps B,
  i.e. it is trained for its effect on learning (first order, ``g`` detached, as
  first-order MAML; ``lookahead_order=2`` keeps ``g``'s graph, second order).
  Batch context only; a minibatch of one sample falls back to the joint loss.

The alphas are recorded for the report in :attr:`NeuMoSync.alpha_history`
(JSON-serialisable): every ``alpha_record_every`` iterations, per layer and
alpha kind, the mean and std over neurons; and per training experience, the
mean and std over all its iterations and neurons.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .._checks import checked, integer, one_of, real
from ..models.neumosync import ALPHA_KINDS, NeuMoSyncNetwork
from .forwarding import keyword_parameters, pop_arguments_of, takes_arguments_of
from .method import DEFAULT_OPTIMIZER, Method
from .template import FastTemplate

OBJECTIVES = ("joint", "lookahead")

#: The network's arguments the strategy takes by name (every keyword-only argument of
#: :class:`NeuMoSyncNetwork`), with their defaults; the network validates them.
NETWORK_ARGUMENTS = {p.name: p.default for p in keyword_parameters(NeuMoSyncNetwork, ["model"])}


def _param_groups(net: NeuMoSyncNetwork, neurosync_lr: Optional[float]) -> list:
    """theta in one group; with ``neurosync_lr``, every other parameter in a second group."""
    if neurosync_lr is None:
        return [{"params": list(net.parameters())}]
    theta = {id(p) for p in net.main.parameters()}
    main = [p for p in net.parameters() if id(p) in theta]
    rest = [p for p in net.parameters() if id(p) not in theta]
    return [{"params": main}, {"params": rest, "lr": float(neurosync_lr)}]


def prefer_foreach(optimizer: torch.optim.Optimizer) -> None:
    """Let a given optimizer that left ``foreach`` unset use its multi-tensor implementation.

    ``foreach=None`` means, on the CPU, one Python loop over the parameter tensors with
    about ten operations each; NeuMoSync has 38 tensors (6 for theta), and that loop was
    measured as the largest single item of an iteration with stock Adam
    (docs/neumosync.md, "Parameters and cost"). ``foreach=True`` is the same update
    computed with one operation per step over all tensors. Optimizers without the option,
    fused ones, ``differentiable`` ones and an explicit ``foreach`` are left alone.
    """
    defaults = optimizer.defaults
    if "foreach" not in defaults or defaults.get("fused") or defaults.get("differentiable"):
        return
    if defaults["foreach"] is None:
        defaults["foreach"] = True  # groups added later (Avalanche's make_optimizer)
    for group in optimizer.param_groups:
        if group.get("foreach") is None and not group.get("fused"):
            group["foreach"] = True


class NeuMoSync(FastTemplate):
    """NeuMoSync as an Avalanche ``SupervisedTemplate`` (on the fast path).

    Args:
        model: the MainNetwork to wrap (wrapped in a :class:`NeuMoSyncNetwork` with
            the network arguments below), or a ready :class:`NeuMoSyncNetwork`
            (then the network arguments must be left at their defaults).
        optimizer: an optimizer; ``None`` builds ``Adam(lr=lr, fused=True)`` over all of the
            network's trainable parameters (theta, e_i, NeuroSync). A given optimizer
            receives every trainable parameter of the network (Avalanche's
            ``make_optimizer`` adds the missing ones at the first experience); if it has a
            ``foreach`` option left at None, it is set to True (:func:`prefer_foreach`:
            the same update, faster over many tensors).
        lr: learning rate of the default Adam [1e-3].
        ema_decay, consolidation, ..., context_to_neurons: every keyword-only argument
            of :class:`~avalanche_neumod.models.neumosync.NeuMoSyncNetwork` (their
            defaults in ``NETWORK_ARGUMENTS``), forwarded to it and validated there.
        neurosync_lr: learning rate of every parameter that is not theta (NeuroSync,
            e_i, layer embeddings, layer biases): a second parameter group of the default
            Adam, or of a given optimizer (rebuilt with its class and settings over the two
            groups; theta keeps its lr); None: one group [None].
        objective: ``"joint"`` [default: one loss on the InferenceNetwork] or
            ``"lookahead"`` (module docstring).
        lookahead_lr: eta, the step size of the lookahead update, > 0 [0.1].
        lookahead_order: 1 [default, first order] or 2 (through ``g``).
        alpha_record_every: record the alpha summary every this many training
            iterations (0: only per experience) [50].
        **base_kwargs: the other keywords: ``FastTemplate``/``SupervisedTemplate`` arguments
            (``train_mb_size``, ``train_epochs``, ``eval_mb_size``, ``device``,
            ``plugins``, ``evaluator``, ``eval_every``, ...).
    """

    @checked(
        lr=real(0.0, low_open=True),
        neurosync_lr=real(0.0, low_open=True, none_ok=True),
        objective=one_of(*OBJECTIVES),
        lookahead_lr=real(0.0, low_open=True),
        lookahead_order=one_of(1, 2),
        alpha_record_every=integer(0),
    )
    @takes_arguments_of(NeuMoSyncNetwork, exclude=["model"])
    def __init__(
        self,
        *,
        model: nn.Module,
        optimizer: Optional[torch.optim.Optimizer] = None,
        lr: float = 1e-3,
        neurosync_lr: Optional[float] = None,
        objective: str = "joint",
        lookahead_lr: float = 0.1,
        lookahead_order: int = 1,
        alpha_record_every: int = 50,
        **base_kwargs,
    ):
        net_kwargs = pop_arguments_of(NeuMoSyncNetwork, base_kwargs, exclude=["model"])
        if isinstance(model, NeuMoSyncNetwork):
            changed = sorted(k for k, v in net_kwargs.items() if v != NETWORK_ARGUMENTS[k])
            if changed:
                raise ValueError(
                    f"model is already a NeuMoSyncNetwork: set {changed} on the network, "
                    "not on the strategy"
                )
            net = model
        else:
            net = NeuMoSyncNetwork(model, **net_kwargs)
        if objective == "lookahead" and net.context != "batch":
            raise ValueError("objective='lookahead' needs context='batch'")
        if optimizer is None:
            optimizer = torch.optim.Adam(_param_groups(net, neurosync_lr), lr=lr, fused=True)
        else:
            if neurosync_lr is not None:  # the given optimizer's kind and settings, two groups
                optimizer = type(optimizer)(_param_groups(net, neurosync_lr), **optimizer.defaults)
            prefer_foreach(optimizer)
        super().__init__(model=net, optimizer=optimizer, **base_kwargs)
        self.objective = objective
        self.lookahead_lr = float(lookahead_lr)
        self.lookahead_order = int(lookahead_order)
        self.alpha_record_every = int(alpha_record_every)
        self.alpha_history: dict = {
            "layers": list(net.layer_names),
            "iterations": [],
            "experiences": [],
        }
        self._train_iterations = 0
        self._exp_sums: Optional[torch.Tensor] = None

    @property
    def network(self) -> NeuMoSyncNetwork:
        return self.model

    def mechanism_history(self) -> dict[str, dict]:
        """``{"alphas": alpha_history}`` once alphas were recorded (``ReportsMechanism``)."""
        h = self.alpha_history
        return {"alphas": h} if h.get("iterations") or h.get("experiences") else {}

    def forward(self):
        if self.objective == "lookahead" and self.is_training and len(self.mb_x) > 1:
            return self._lookahead_forward()
        self._lookahead_loss = None
        return super().forward()

    def criterion(self):
        if self.is_training and getattr(self, "_lookahead_loss", None) is not None:
            return self._lookahead_loss
        return super().criterion()

    def _lookahead_forward(self) -> torch.Tensor:
        """Outputs for halves A (at theta) and B (at theta' = theta - eta alpha_SM g);
        sets the loss ``(|A| L_A + |B| L_B) / |A + B|`` (module docstring)."""
        net: NeuMoSyncNetwork = self.model
        x, y = self.mb_x, self.mb_y
        half = len(x) // 2
        alphas = net.alphas(x)
        net.last_alphas = alphas.detach()
        weights = net.inference_weights(alphas)
        out_a = net.inference_forward(x[:half], alphas, weights)
        loss_a = self._criterion(out_a, y[:half])
        names = list(weights)
        second = self.lookahead_order == 2
        grads = torch.autograd.grad(
            loss_a, [weights[k] for k in names], retain_graph=True, create_graph=second
        )
        theta = net.neuron_parameters()
        stepped = {
            k: theta[k] - self.lookahead_lr * net.sm_view(alphas, k, g) * g
            for k, g in zip(names, grads)
        }
        out_b = net.inference_forward(
            x[half:], alphas, net.inference_weights(alphas, theta=stepped), capture=False
        )
        loss_b = self._criterion(out_b, y[half:])
        self._lookahead_loss = (half * loss_a + (len(x) - half) * loss_b) / len(x)
        return torch.cat((out_a, out_b))

    def optimizer_step(self):
        """Optimizer step on theta, e_i and NeuroSync; then the EMA step and the
        statistics update (docs/neumosync.md, "training")."""
        super().optimizer_step()
        net = self.model
        net.consolidate()
        net.update_statistics()
        self._record_alphas(net)

    def _record_alphas(self, net: NeuMoSyncNetwork) -> None:
        a = net.last_alphas
        if a is None:
            return
        a = a.reshape(-1, net.n_neurons, 4)
        # per neuron and alpha kind: count, sum and sum of squares over the experience's
        # iterations (and samples); reduced per layer at the end of the experience
        if self._exp_sums is None:
            zeros = torch.zeros(net.n_neurons, 4, dtype=torch.float64, device=a.device)
            self._exp_sums = [0, zeros, zeros.clone()]
        a64 = a.double()
        if a.shape[0] == 1:  # context "batch": one set of alphas
            a64 = a64[0]
            self._exp_sums[1].add_(a64)
            self._exp_sums[2].addcmul_(a64, a64)
        else:
            self._exp_sums[1].add_(a64.sum(0))
            self._exp_sums[2].add_((a64 * a64).sum(0))
        self._exp_sums[0] += a.shape[0]
        self._train_iterations += 1
        if self.alpha_record_every and (self._train_iterations - 1) % self.alpha_record_every == 0:
            self.alpha_history["iterations"].append(
                {
                    "iteration": self._train_iterations - 1,
                    "experience": self._experience_id(),
                    "layers": net.alpha_summary(a),
                }
            )

    def _experience_id(self) -> Optional[int]:
        exp = getattr(self, "experience", None)
        return None if exp is None else int(getattr(exp, "current_experience", -1))

    def _before_training_exp(self, **kwargs):
        self._exp_sums = None
        super()._before_training_exp(**kwargs)

    def _after_training_exp(self, **kwargs):
        if self._exp_sums is not None:
            net = self.model
            samples, s1, s2 = self._exp_sums
            index, n_layers = net.features.layer_index, len(net.layers)
            s1 = torch.zeros(n_layers, 4, dtype=s1.dtype, device=s1.device).index_add_(0, index, s1)
            s2 = torch.zeros_like(s1).index_add_(0, index, s2)
            cnt = torch.bincount(index, minlength=n_layers).double()[:, None] * samples
            mean = s1 / cnt
            std = (s2 / cnt - mean**2).clamp_min(0).sqrt()
            layers = {
                name: {k: [float(mean[i, j]), float(std[i, j])] for j, k in enumerate(ALPHA_KINDS)}
                for i, name in enumerate(net.layer_names)
            }
            self.alpha_history["experiences"].append(
                {
                    "experience": self._experience_id(),
                    "iterations": self._train_iterations,
                    "layers": layers,
                }
            )
            self._exp_sums = None
        super()._after_training_exp(**kwargs)


NEUMOSYNC_METHOD = Method(
    "NeuMoSync",
    NeuMoSync,
    # trains with the suite's optimizer like every other method (the fairness rule): its own
    # Adam(lr) over theta, the neuron embeddings and NeuroSync is for standalone use only
    optimizer=dict(DEFAULT_OPTIMIZER),
    tunable=("ema_decay", "alpha_scale", "neurosync_lr", "lookahead_lr"),
    doc="NeuMoSync: neuron-wise mixing of activations (docs/neumosync.md)",
)
