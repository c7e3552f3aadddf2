"""The NeuMoSync strategy (reconstructed, every decision ours: docs/neumosync.md).

The equations are in :mod:`avalanche_neumod.models.neumosync.mechanism`; this module
trains them. One training iteration is eq. (8), the joint objective: the loss is the
criterion (cross-entropy) of the InferenceNetwork's output (alphas from the minibatch);
one optimizer updates theta, the learnable neuron features and NeuroSync together (plain
backprop, no meta-learning loop); then the ConsolidatedNetwork takes its EMA step (2)
and the activity statistics absorb the batch's activity (1). Evaluation runs the
InferenceNetwork with alphas from the evaluation batch and updates nothing.

Variants (ours; docs/neumosync.md):

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
- ``neurosync_every=k``: the alphas are computed once every k training
  iterations, from the window's first minibatch, and held fixed over the window; each
  iteration trains theta as usual (eq. 8 at the held alphas), and NeuroSync (with the
  e_i and E) takes one step at the window's end on the accumulated alpha-gradient::

      grad_psi = ( sum_{j in window} dL_j / d alpha ) . d alpha / d psi

  exactly the gradient of the window's summed loss with the alphas held fixed (each
  L_j at its own theta_j). A window cut short by the end of the training experience is
  closed there by one optimizer step on NeuroSync alone. k = 1 is the joint objective.
  NeuroSync's cost (the encoder's forward and backward) is then paid once per k
  iterations. Joint objective and batch context only.

The alphas are recorded for the report in :attr:`NeuMoSync.alpha_history`
(JSON-serialisable): every ``alpha_record_every`` iterations, per layer and
alpha kind, the mean and std over neurons; and per training experience, the
mean and std over all its iterations and neurons.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..argument_rules import checked, integer, one_of, real
from ..models.neumosync import ALPHA_KINDS, NeuMoSyncNetwork
from ..models.neumosync.fast import prefer_foreach
from .argument_forwarding import keyword_parameters, pop_arguments_of, takes_arguments_of
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
        neurosync_every: compute the alphas once every this many training iterations and
            train NeuroSync on the window's accumulated alpha-gradients (module
            docstring) [1: every iteration].
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
        neurosync_every=integer(1),
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
        neurosync_every: int = 1,
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
        if neurosync_every > 1 and (objective != "joint" or net.context != "batch"):
            raise ValueError(
                "neurosync_every > 1 needs objective='joint' and context='batch' (one set "
                "of alphas held over the window)"
            )
        if net.gradient_plasticity and objective != "lookahead":
            raise ValueError(
                "gradient_plasticity needs objective='lookahead': alpha_SM is then absent "
                "from the forward pass, so the joint loss gives it no gradient"
            )
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
        self.neurosync_every = int(neurosync_every)
        # the open window: (alphas with NeuroSync's graph, the held leaf, iterations so far)
        self._window: Optional[list] = None
        self._recorded: Optional[torch.Tensor] = None  # the alphas last added to the sums
        self._repeats = 0  # iterations at those alphas not added yet
        self.alpha_history: dict = {
            "layers": list(net.layer_names),
            "iterations": [],
            "experiences": [],
        }
        self._train_iterations = 0
        self._exp_sums: Optional[list] = None
        # per alpha kind: samples within 1% of a bound, and samples that can reach one
        self._saturated = torch.zeros(4, dtype=torch.float64)
        self._bounded = torch.zeros(4, dtype=torch.float64)

    @property
    def network(self) -> NeuMoSyncNetwork:
        return self.model

    # ------------------------------------------------------------------ reporting hooks
    def mechanism_history(self) -> dict[str, dict]:
        """``{"alphas": alpha_history}`` once an alpha was recorded (the runner's histories)."""
        h = self.alpha_history
        return {"alphas": h} if (h["iterations"] or h["experiences"]) else {}

    def mechanism_activity(self, strategy=None) -> dict[str, float]:
        """Per alpha kind, the fraction of the current experience's alphas (neurons x
        iterations, x samples with ``context="sample"``) within 1% of their bound, i.e.
        ``|alpha - neutral| >= 0.99 a``, over the neurons whose alpha
        has a fixed bound (not fixed by an ablation, not centred by ``normalised_gains``):
        ``alpha_saturation_<kind>``; NaN where none has."""
        if self._recorded is not None:
            self._flush_repeats(self.model)
        frac = (self._saturated / self._bounded).tolist()
        return {f"alpha_saturation_{k}": float(v) for k, v in zip(ALPHA_KINDS, frac)}

    def forward(self):
        if self.objective == "lookahead" and self.is_training and len(self.mb_x) > 1:
            return self._lookahead_forward()
        self._lookahead_loss = None
        if self.neurosync_every > 1 and self.is_training:
            return self._windowed_forward()
        return super().forward()

    def _windowed_forward(self) -> torch.Tensor:
        """``neurosync_every > 1``: the InferenceNetwork at the window's held alphas (a leaf,
        whose ``grad`` accumulates ``sum_j dL_j/d alpha`` over the window)."""
        net: NeuMoSyncNetwork = self.model
        if self._window is None:  # the window opens: alphas from this minibatch
            alphas = net.alphas(self.mb_x)
            held = alphas.detach().requires_grad_()
            self._window = [alphas, held, 0, held.detach()]
        net.last_alphas = self._window[3]  # one tensor per window (recorded once)
        return net.inference_forward(self.mb_x, self._window[1])

    def _close_window(self) -> None:
        """NeuroSync's gradient of the window: the accumulated alpha-gradient chain-ruled
        through the alphas' graph once."""
        alphas, held = self._window[:2]
        self._window = None
        if held.grad is not None:
            alphas.backward(held.grad)

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

    def backward(self):
        """The backward pass; with ``gradient_plasticity``, then (7c) theta's gradient times
        alpha_SM per neuron."""
        super().backward()
        net = self.model
        if net.gradient_plasticity:
            net.modulate_gradients(net.last_alphas)
        if self._window is not None:
            self._window[2] += 1
            if self._window[2] == self.neurosync_every:
                self._close_window()  # NeuroSync's gradient joins this iteration's step

    def optimizer_step(self):
        """(8) Optimizer step on theta, e_i and NeuroSync; then (2) the EMA step and (1)
        the statistics update."""
        super().optimizer_step()
        net = self.model
        net.consolidate()
        net.update_statistics()
        self._record_alphas(net)

    def _record_alphas(self, net: NeuMoSyncNetwork) -> None:
        a = net.last_alphas
        if a is None:
            return
        if a is self._recorded:  # the same held alphas (neurosync_every > 1): counted once
            self._repeats += 1
        else:
            self._flush_repeats(net)
            self._accumulate(net, a.reshape(-1, net.n_neurons, 4))
            self._recorded = a
        self._train_iterations += 1
        if self.alpha_record_every and (self._train_iterations - 1) % self.alpha_record_every == 0:
            self.alpha_history["iterations"].append(
                {
                    "iteration": self._train_iterations - 1,
                    "experience": self._experience_id(),
                    "layers": net.alpha_summary(a),
                }
            )

    def _accumulate(self, net: NeuMoSyncNetwork, a: torch.Tensor, times: int = 1) -> None:
        """Add ``times`` iterations at alphas ``a`` ``(S, N, 4)`` to the experience's sums:
        per neuron and alpha kind, count, sum and sum of squares over iterations (and
        samples), reduced per layer at the end of the experience; and the saturation."""
        if self._exp_sums is None:
            zeros = torch.zeros(net.n_neurons, 4, dtype=torch.float64, device=a.device)
            self._exp_sums = [0, zeros, zeros.clone()]
        # saturation: |alpha - neutral| >= 0.99 a, counted where the alpha has a bound
        threshold, bounded = self._saturation_constants(net)
        near = (a - net.alpha_offset).abs_() >= threshold
        self._saturated += near.sum((0, 1)).double() * times
        self._bounded += bounded * (a.shape[0] * times)
        a64 = a.double()
        if times == 1 and a.shape[0] == 1:  # context "batch": one set of alphas
            a64 = a64[0]
            self._exp_sums[1].add_(a64)
            self._exp_sums[2].addcmul_(a64, a64)
        else:
            self._exp_sums[1].add_(a64.sum(0), alpha=times)
            self._exp_sums[2].add_((a64 * a64).sum(0), alpha=times)
        self._exp_sums[0] += a.shape[0] * times

    def _saturation_constants(self, net: NeuMoSyncNetwork) -> tuple[torch.Tensor, torch.Tensor]:
        """``(threshold, bounded)`` for the saturation count, computed once per bound tensor:
        ``threshold = 0.99 a`` where the alpha has a bound and ``inf`` where it has none
        (``|alpha - neutral| >= threshold`` is then ``>= 0.99 a and a > 0``), and per alpha
        kind the number of neurons with a bound (float64)."""
        bound = net.alpha_bound
        cached = getattr(self, "_saturation_cache", None)
        if cached is None or cached[0] is not bound:
            has = bound > 0
            threshold = torch.where(has, 0.99 * bound, torch.full_like(bound, float("inf")))
            cached = (bound, threshold, has.sum(0).double())
            self._saturation_cache = cached
        return cached[1], cached[2]

    def _flush_repeats(self, net: NeuMoSyncNetwork) -> None:
        if self._repeats:
            self._accumulate(net, self._recorded.reshape(-1, net.n_neurons, 4), self._repeats)
        self._repeats = 0

    def _experience_id(self) -> Optional[int]:
        exp = getattr(self, "experience", None)
        return None if exp is None else int(getattr(exp, "current_experience", -1))

    def _before_training_exp(self, **kwargs):
        self._exp_sums = None
        self._window = None
        self._recorded, self._repeats = None, 0
        self._saturated.zero_()
        self._bounded.zero_()
        super()._before_training_exp(**kwargs)

    def _after_training_exp(self, **kwargs):
        if self._window is not None:  # a window cut short: NeuroSync's step alone
            self.optimizer.zero_grad(set_to_none=True)
            self._close_window()
            self.optimizer.step()
        self._flush_repeats(self.model)
        self._recorded = None
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
