"""Fixed-seed NeuMoSync runs whose losses, alphas and outputs are stored in
``tests/data/neumosync_reference.pt`` (computed at commit 3a32fc3, before the
first speed work on NeuMoSync) so that a faster implementation can be checked to
compute the same thing (``tests/test_neumosync_equivalence.py``).

Regenerate (only when the math is meant to change)::

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python tests/neumosync_reference.py
"""

from __future__ import annotations

from pathlib import Path

import torch

from avalanche_neumod.benchmarks.tensor_data import ExperienceTensors, tensor_benchmark
from avalanche_neumod.models import MLP, ConvNet
from avalanche_neumod.training.neumosync import NeuMoSync

REFERENCE = Path(__file__).resolve().parent / "data" / "neumosync_reference.pt"

#: The reference was computed when the default alpha scale was DESIGN.md's a = 1; the
#: configurations that do not set ``alpha_scale`` ask for it explicitly.
A1 = {"alpha_scale": 1.0}

#: name -> (model, strategy keywords, batch size)
CONFIGS: dict[str, tuple[str, dict, int]] = {
    "default": ("mlp", A1, 16),
    "batch128": ("mlp", A1, 128),
    "sample": ("mlp", {**A1, "context": "sample"}, 16),
    "lookahead": ("mlp", {**A1, "objective": "lookahead"}, 16),
    "lookahead2": ("mlp", {**A1, "objective": "lookahead", "lookahead_order": 2}, 16),
    "variants": (
        "mlp",
        {
            "alpha_scale": (1.0, 0.5, 1.0, 0.1),
            "feature_norm": "both",
            "head_bias": "layer",
            "neurosync_lr": 3e-3,
            "context_to_neurons": True,
        },
        16,
    ),
    "layernorm_nohead": ("mlp", {**A1, "feature_norm": "layer", "head_bias": "none"}, 16),
    "no_neurosync": ("mlp", {**A1, "neurosync": False}, 16),
    "ablations": ("mlp", {**A1, "consolidation": False, "activity_modulation": False}, 16),
    "convnet": ("conv", A1, 16),
}


class _Losses:
    """Plugin-free loss recorder: wraps ``optimizer_step`` to read the loss."""

    def __init__(self, strategy: NeuMoSync):
        self.values: list[float] = []
        step = strategy.optimizer_step

        def record():
            self.values.append(float(strategy.loss.detach()))
            step()

        strategy.optimizer_step = record


def run_reference(name: str) -> dict[str, torch.Tensor]:
    """Train the ``name`` configuration for a few iterations from seed 0 on one intra-op
    thread (as the stored values were); return the losses per iteration, and alphas and
    outputs on a fixed evaluation batch."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(name)
    finally:
        torch.set_num_threads(threads)


def _run(name: str) -> dict[str, torch.Tensor]:
    kind, kwargs, batch = CONFIGS[name]
    torch.manual_seed(0)
    if kind == "mlp":
        model, shape = MLP(), (1, 28, 28)
    else:
        model, shape = ConvNet(in_channels=1, input_size=28), (1, 28, 28)
    g = torch.Generator().manual_seed(1)
    n = 6 * batch
    x = torch.randn(n, *shape, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    bm = tensor_benchmark([ExperienceTensors(x, y, 0)], [ExperienceTensors(x, y, 0)])
    strategy = NeuMoSync(model=model, train_mb_size=batch, evaluator=None, **kwargs)
    losses = _Losses(strategy)
    torch.manual_seed(2)
    strategy.train(bm.train_stream[0])
    net = strategy.model
    net.eval()
    x_eval = x[:20]
    with torch.no_grad():
        alphas = net.alphas(x_eval)
        out = net(x_eval)
    return {
        "losses": torch.tensor(losses.values, dtype=torch.float64),
        "alphas": alphas.clone(),
        "outputs": out.clone(),
    }


if __name__ == "__main__":
    REFERENCE.parent.mkdir(exist_ok=True)
    torch.save({name: run_reference(name) for name in CONFIGS}, REFERENCE)
    print(f"wrote {REFERENCE}")
