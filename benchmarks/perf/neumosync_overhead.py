"""P2 NeuMoSync: cost per training iteration against its floor and our Naive; parameters.

Bars, one thread, NeuMoSync's defaults and its default optimizer
(fused Adam, lr 1e-3; Naive with the same fused Adam), timed interleaved in one run (each
program trains one experience per timed call; the ratio of median times per iteration):

- ``P2 NeuMoSync / floor (batch 16)``, ``(batch 128)``: on MLP 784-100-100-10, the
  NeuMoSync iteration over its *floor*, NeuroSync's encoder alone (forward and backward
  over the 211 tokens, as :meth:`~avalanche_neumod.models.neumosync.NeuroSync.encode`
  computes it) plus one Naive iteration: what any implementation of this architecture
  pays (the encoder, and theta's own forward, backward and step); at most **1.5x**.
  The notes give the ratio to Naive and the floor's.
- ``P2 NeuMoSync ConvNet (batch 128)``, ``P2 NeuMoSync SlimResNet18 (batch 128)``:
  against Naive on 32x32x3 inputs; at most **1.3x**.
- ``P2 NeuMoSync every 8 (batch 16)``: ``neurosync_every=8`` (NeuroSync once every 8
  iterations) against Naive on the MLP; at most **2.5x**.
- ``P2 NeuMoSync params``: extra trainable parameters over the MainNetwork's, at most 10%.

The data are random tensors (timing does not depend on pixel values). The load average
is printed with the rows (the machine may be shared). ``--breakdown`` prints the cost of
each component instead (each removed in turn, timed interleaved with the full iteration
and Naive).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from common import PerfResult, device_sync, interleaved_times, median  # noqa: E402

from avalanche_neumod.benchmarks.tensor_data import ExperienceTensors, tensor_benchmark  # noqa: E402
from avalanche_neumod.models import MLP, ConvNet, SlimResNet18  # noqa: E402
from avalanche_neumod.models.neumosync import NeuMoSyncNetwork  # noqa: E402
from avalanche_neumod.training.neumosync import NeuMoSync  # noqa: E402
from avalanche_neumod.training.template import FastNaive  # noqa: E402

BATCH = 16  # the Permuted MNIST suite's
FLOOR_BAR = 1.5  # NeuMoSync / (encoder + Naive) on the MLP
NAIVE_BAR = {"convnet": 1.3, "slim_resnet18": 1.3}  # NeuMoSync / Naive, batch 128, 32x32x3
EVERY, EVERY_BAR = 8, 2.5  # neurosync_every=8 / Naive, MLP, batch 16
BARS = {16: FLOOR_BAR, 128: FLOOR_BAR}  # device_rows: the MLP lines


MODELS = {
    "mlp": MLP,
    "convnet": lambda: ConvNet(in_channels=3, num_classes=10, input_size=32),
    "slim_resnet18": lambda: SlimResNet18(num_classes=10),
}
INPUT_SHAPES = {"mlp": (1, 28, 28), "convnet": (3, 32, 32), "slim_resnet18": (3, 32, 32)}


def _strategies(
    batch: int,
    fused: bool,
    objective: str = "joint",
    model: str = "mlp",
    device="cpu",
    **kwargs,
):
    """FastNaive and NeuMoSync on ``model`` (the same initial weights) with Adam, on
    ``device`` (the models are moved there before the optimizers are built)."""
    torch.manual_seed(0)
    naive_model = MODELS[model]()
    ours_model = MODELS[model]()
    ours_model.load_state_dict(naive_model.state_dict())
    net = NeuMoSyncNetwork(ours_model)
    if torch.device(device).type != "cpu":
        naive_model.to(device)
        net.to(device)
    kw = {"fused": True} if fused else {}
    naive = FastNaive(
        model=naive_model,
        optimizer=torch.optim.Adam(naive_model.parameters(), lr=1e-3, **kw),
        train_mb_size=batch,
        evaluator=None,
        device=device,
    )
    ours = NeuMoSync(
        model=net,
        optimizer=torch.optim.Adam(net.parameters(), lr=1e-3, **kw),
        train_mb_size=batch,
        evaluator=None,
        objective=objective,
        device=device,
        **kwargs,
    )
    return naive, ours, net


def random_experience(n: int, shape: tuple[int, ...] = (1, 28, 28), seed: int = 0):
    """One training experience of ``n`` random inputs of ``shape`` and labels in 0..9."""
    g = torch.Generator().manual_seed(seed)
    data = ExperienceTensors(
        torch.randn(n, *shape, generator=g), torch.randint(0, 10, (n,), generator=g), 0
    )
    return tensor_benchmark([data], [data]).train_stream[0]


def device_rows(
    device="cpu",
    quick: bool = False,
    models: tuple[str, ...] = ("mlp", "slim_resnet18"),
    batches: tuple[int, ...] = (16, 128),
) -> list[PerfResult]:
    """NeuMoSync against FastNaive per iteration on ``device`` (fused Adam, the default
    objective), for each model and batch size, each ratio timed interleaved in one run (the
    device synchronised around every timed call); measured only, without a bar. ``quick``:
    one iteration, one repeat and SlimResNet18 on 8x8 inputs (a check that it runs)."""
    repeats = 1 if quick else 5
    rows = []
    for model in models:
        shape = INPUT_SHAPES[model]
        if quick and model == "slim_resnet18":
            shape = (3, 8, 8)
        for batch in batches:
            iters = 1 if quick else (40 if model == "slim_resnet18" else 100)
            n = batch * iters
            exp = random_experience(n, shape)
            naive, ours, _ = _strategies(batch, True, model=model, device=device)
            times = interleaved_times(
                {
                    "naive": lambda s=naive, e=exp: s.train(e),
                    "ours": lambda s=ours, e=exp: s.train(e),
                },
                repeats=repeats,
                sync=device_sync(device),
            )
            t_naive = median(times["naive"]) / iters
            t_ours = median(times["ours"]) / iters
            bar = float("inf")  # measured only: the CPU bars are in run()
            rows.append(
                PerfResult(
                    id=f"P2 NeuMoSync {model} (batch {batch}, {torch.device(device).type})",
                    what=f"time per iteration, NeuMoSync vs FastNaive, {model}, fused Adam",
                    ours=t_ours,
                    reference=t_naive,
                    unit="s",
                    ratio=t_ours / t_naive,
                    bar=bar,
                    notes="" if bar != float("inf") else "no bar (measured only)",
                )
            )
    return rows


def _encoder_step(net: NeuMoSyncNetwork):
    """One forward and backward of NeuroSync's encoder alone over the network's tokens."""
    ns = net.neurosync
    tokens = torch.randn(1, net.n_neurons + 1, ns.d_model, requires_grad=True)

    def step():
        ns.encode(tokens).sum().backward()

    return step


def run(quick: bool = False) -> list[PerfResult]:
    repeats = 3 if quick else 7
    load = os.getloadavg()
    results = []
    # MLP: NeuMoSync, Naive, the encoder alone and neurosync_every=8, interleaved
    for batch in (16, 128):
        iters = 10 if quick else (200 if batch == 16 else 30)
        exp = random_experience(batch * iters)
        naive, ours, net = _strategies(batch, True)
        encoder = _encoder_step(net)
        programs = {
            "naive": lambda s=naive, e=exp: s.train(e),
            "ours": lambda s=ours, e=exp: s.train(e),
            "encoder": lambda f=encoder, n=iters: [f() for _ in range(n)],
        }
        if batch == BATCH:
            _, every, _ = _strategies(batch, True, neurosync_every=EVERY)
            programs["every"] = lambda s=every, e=exp: s.train(e)
        t = {k: median(v) / iters for k, v in interleaved_times(programs, repeats).items()}
        floor = t["encoder"] + t["naive"]
        results.append(
            PerfResult(
                id=f"P2 NeuMoSync / floor (batch {batch})",
                what="time per iteration, NeuMoSync vs its floor (NeuroSync's encoder fwd+bwd "
                f"over {net.n_neurons + 1} tokens + one FastNaive iteration), MLP 784-100-100-10",
                ours=t["ours"],
                reference=floor,
                unit="s",
                ratio=t["ours"] / floor,
                bar=FLOOR_BAR,
                notes=f"NeuMoSync {t['ours'] / t['naive']:.2f}x Naive, floor "
                f"{floor / t['naive']:.2f}x Naive; load average {load[0]:.2f}",
            )
        )
        if "every" in t:
            results.append(
                PerfResult(
                    id=f"P2 NeuMoSync every {EVERY} (batch {batch})",
                    what=f"time per iteration, NeuMoSync neurosync_every={EVERY} vs FastNaive, "
                    "MLP 784-100-100-10",
                    ours=t["every"],
                    reference=t["naive"],
                    unit="s",
                    ratio=t["every"] / t["naive"],
                    bar=EVERY_BAR,
                    notes=f"load average {load[0]:.2f}",
                )
            )
    # ConvNet and SlimResNet18 on 32x32x3 inputs, batch 128
    for model, bar in NAIVE_BAR.items():
        iters = 2 if quick else (10 if model == "convnet" else 6)
        shape = INPUT_SHAPES[model]
        exp = random_experience(128 * iters, shape)
        naive, ours, _ = _strategies(128, True, model=model)
        times = interleaved_times(
            {
                "naive": lambda s=naive, e=exp: s.train(e),
                "ours": lambda s=ours, e=exp: s.train(e),
            },
            repeats=2 if quick else 5,
        )
        t_naive, t_ours = (median(times[k]) / iters for k in ("naive", "ours"))
        name = {"convnet": "ConvNet", "slim_resnet18": "SlimResNet18"}[model]
        results.append(
            PerfResult(
                id=f"P2 NeuMoSync {name} (batch 128)",
                what=f"time per iteration, NeuMoSync vs FastNaive, {name} on 32x32x3 inputs",
                ours=t_ours,
                reference=t_naive,
                unit="s",
                ratio=t_ours / t_naive,
                bar=bar,
                notes=f"load average {os.getloadavg()[0]:.2f}",
            )
        )
    net = NeuMoSyncNetwork(MLP())
    main = sum(p.numel() for p in net.main.parameters())
    results.append(
        PerfResult(
            id="P2 NeuMoSync params",
            what="extra trainable parameters (NeuroSync, embeddings, projections) / MainNetwork",
            ours=float(net.extra_parameters()),
            reference=float(main),
            unit="params",
            ratio=net.parameter_overhead(),
            bar=0.10,
            notes="ratio is a fraction (paper: 5-8%); MLP 784-100-100-10",
        )
    )
    return results


def _skip(obj, name: str, value=None) -> None:
    """Replace ``obj.name`` by a function that returns ``value`` (for the breakdown)."""
    setattr(obj, name, lambda *args, **kwargs: value)


#: component -> how to remove it from a (strategy, network) pair
REMOVALS = {
    "NeuroSync encoder": lambda s, n: setattr(n.neurosync, "encode", lambda seq: seq),
    "all of NeuroSync (features, encoder, head)": lambda s, n: setattr(
        n, "alphas", lambda x: n.alpha_offset
    ),
    "weight statistics": lambda s, n: _skip(n, "weight_statistics", torch.zeros(n.n_neurons, 3)),
    "activity capture + statistics": lambda s, n: [
        _skip(n, k) for k in ("_capture_in", "_capture_out", "update_statistics")
    ],
    "EMA of phi": lambda s, n: _skip(n, "consolidate"),
    "alpha recording": lambda s, n: _skip(s, "_record_alphas"),
    "optimizer step": lambda s, n: _skip(s.optimizer, "step"),
}


def breakdown(batch: int = BATCH, fused: bool = False, repeats: int = 5, n: int = 1600) -> None:
    """Print the cost of each component of a NeuMoSync iteration: the full iteration
    timed interleaved with Naive and with copies that each skip one component
    (numbers, not a bar; the skipped runs compute something else)."""
    g = torch.Generator().manual_seed(0)
    data = ExperienceTensors(
        torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g), 0
    )
    exp = tensor_benchmark([data], [data]).train_stream[0]
    naive, full, _ = _strategies(batch, fused)
    programs = {"Naive": lambda: naive.train(exp), "NeuMoSync": lambda: full.train(exp)}
    for name, remove in REMOVALS.items():
        _, s, net = _strategies(batch, fused)
        remove(s, net)
        programs[f"without {name}"] = lambda s=s: s.train(exp)
    times = interleaved_times(programs, repeats=repeats)
    iters = -(-n // batch)
    t = {k: median(v) / iters for k, v in times.items()}
    print(f"batch {batch}, {'fused' if fused else 'stock'} Adam; ms per iteration, x Naive")
    for k, v in t.items():
        cost = "" if k in ("Naive", "NeuMoSync") else f"  cost {(t['NeuMoSync'] - v) * 1e3:6.3f} ms"
        print(f"{k:48s} {v * 1e3:7.3f} ms {v / t['Naive']:6.2f}x{cost}")


if __name__ == "__main__":
    if "--breakdown" in sys.argv:
        for batch, fused in ((16, False), (16, True), (128, True)):
            breakdown(batch, fused)
        sys.exit()
    for r in run(quick="--quick" in sys.argv):
        print(
            f"{r.id}: {r.what}: ours {r.ours:.4g} {r.unit}, ref {r.reference:.4g} {r.unit}, "
            f"ratio {r.ratio:.3f} (bar {r.bar}) {'PASS' if r.passed else 'FAIL'} {r.notes}"
        )
