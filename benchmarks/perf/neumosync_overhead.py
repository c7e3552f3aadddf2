"""P2 NeuMoSync: cost per training iteration against our Naive, and the parameter overhead.

Bars (NeuMoSync's cost against Naive), on MLP 784-100-100-10 with NeuMoSync's defaults: at most
**4x** Naive per iteration at batch 16 and at most **2.5x** at batch 128; extra
trainable parameters at most 10% of the MainNetwork's. The lookahead objective is
reported on its own line, without a bar.

Both sides train the same MLP 784-100-100-10 (same initial weights) on the same
in-memory Permuted-MNIST-shaped experience (batch 16, as the Permuted MNIST
suite), one experience per timed call, timed interleaved (Naive, NeuMoSync,
...); the ratio of the median times per iteration is reported. Both use Adam
(lr 1e-3) built the same way: stock ``torch.optim.Adam`` in the first line,
``fused=True`` on both sides in the others. NeuMoSync has 38 parameter tensors
against Naive's 6, so per-tensor optimizer work weighs on it: given a stock
Adam (``foreach`` unset), the NeuMoSync strategy runs its ``foreach``
implementation (the same update; Naive keeps the per-tensor loop), and the
strategy's default optimizer is the fused one. The batch-128 line shows that
NeuMoSync's extra work is per minibatch, not per sample. The lookahead line
(``objective="lookahead"``, batch 16, fused Adam) is reported separately: it runs the
MainNetwork twice per iteration (halves A and B) and takes a gradient inside the
graph, so it is not held to the default's bars (its line has no bar). NeuMoSync
runs with its defaults (d_model 16, 2 layers, 4 heads, batch context), which
include, every iteration, the neuron features, the NeuroSync Transformer over
211 tokens, the InferenceNetwork, the EMA step and the statistics update.
The data are random tensors: timing does not depend on pixel values.
``--breakdown`` prints the cost of each component instead (each removed in turn,
timed interleaved with the full iteration and Naive; the command for
docs/neumosync.md's table).

The "floor" lines time NeuroSync's Transformer alone (forward and backward of the
encoder over the 211 tokens at the default sizes, nothing else, as NeuroSync
computes it: :meth:`~avalanche_neumod.models.neurosync.NeuroSync.encode`) against
the Naive iteration of the same batch size: the part of every NeuMoSync iteration
that no implementation of NeuMoSync (docs/neumosync.md) can skip. Every NeuMoSync
iteration also runs theta's forward, backward and optimizer step (the InferenceNetwork
over the same batch), i.e. at least one Naive iteration: the floor plus one is a lower
bound on the ratio, printed in the notes. They show how
much of each bar the Transformer leaves for the rest (theta's own
forward/backward, the InferenceNetwork, the optimizer over 38 tensors, EMA and
statistics). Their notes give stock ``nn.TransformerEncoder`` (the same function)
for comparison.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from common import PerfResult, device_sync, interleaved_times, median  # noqa: E402

from avalanche_neumod.benchmarks.tensor_data import ExperienceTensors, tensor_benchmark  # noqa: E402
from avalanche_neumod.models import MLP, SlimResNet18  # noqa: E402
from avalanche_neumod.models.neumosync import NeuMoSyncNetwork  # noqa: E402
from avalanche_neumod.training.neumosync import NeuMoSync  # noqa: E402
from avalanche_neumod.training.template import FastNaive  # noqa: E402

BATCH = 16  # the Permuted MNIST suite's
# (batch, fused Adam, objective)
CONFIGS = ((16, False, "joint"), (16, True, "joint"), (128, True, "joint"), (16, True, "lookahead"))
BARS = {16: 4.0, 128: 2.5}  # NeuMoSync <= 4x Naive at batch 16, 2.5x at 128
FLOOR_CONFIGS = {(16, False, "joint"), (128, True, "joint")}


MODELS = {"mlp": MLP, "slim_resnet18": lambda: SlimResNet18(num_classes=10)}
INPUT_SHAPES = {"mlp": (1, 28, 28), "slim_resnet18": (3, 32, 32)}


def _strategies(
    batch: int, fused: bool, objective: str = "joint", model: str = "mlp", device="cpu"
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
    device synchronised around every timed call). The MLP lines carry P2's bars; the
    SlimResNet18 lines have none (measured only). ``quick``: one iteration, one repeat and
    SlimResNet18 on 8x8 inputs (a check that it runs, not a timing)."""
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
            bar = BARS.get(batch, float("inf")) if model == "mlp" else float("inf")
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


def _floor(net: NeuMoSyncNetwork, naive, exp, iters: int, repeats: int) -> PerfResult:
    """NeuroSync's encoder alone, forward + backward, per iteration: as NeuroSync computes
    it (``encode``) and, for the notes, stock ``nn.TransformerEncoder``; timed interleaved
    with Naive's epoch (``iters`` encoder steps against ``iters`` Naive iterations)."""
    ns = net.neurosync
    tokens = torch.randn(1, net.n_neurons + 1, ns.d_model, requires_grad=True)

    def ours():
        ns.encode(tokens).sum().backward()

    def stock():
        ns.encoder(tokens).sum().backward()

    times = interleaved_times(
        {
            "naive": lambda: naive.train(exp),
            "ours": lambda: [ours() for _ in range(iters)],
            "stock": lambda: [stock() for _ in range(iters)],
        },
        repeats=repeats,
    )
    t_naive, t_enc, t_stock = (median(times[k]) / iters for k in ("naive", "ours", "stock"))
    batch = naive.train_mb_size
    return PerfResult(
        id=f"P2 NeuMoSync floor (batch {batch})",
        what=f"NeuroSync's encoder alone (fwd+bwd, {net.n_neurons + 1} tokens) vs a FastNaive "
        "iteration",
        ours=t_enc,
        reference=t_naive,
        unit="s",
        ratio=t_enc / t_naive,
        bar=BARS[batch],
        notes=f"what every NeuMoSync iteration pays; with theta's own step (one Naive "
        f"iteration) at least {1 + t_enc / t_naive:.2f}x; stock nn.TransformerEncoder: "
        f"{t_stock / t_naive:.2f}x",
    )


def run(quick: bool = False) -> list[PerfResult]:
    n = 800 if quick else 3200
    repeats = 3 if quick else 7
    g = torch.Generator().manual_seed(0)
    data = ExperienceTensors(
        torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g), 0
    )
    bm = tensor_benchmark([data], [data])
    exp = bm.train_stream[0]
    results = []
    for batch, fused, objective in CONFIGS:
        iters = -(-n // batch)
        naive, ours, net = _strategies(batch, fused, objective)
        times = interleaved_times(
            {
                "naive": lambda s=naive: s.train(exp),
                "ours": lambda s=ours: s.train(exp),
            },
            repeats=repeats,
        )
        t_naive = median(times["naive"]) / iters
        t_ours = median(times["ours"]) / iters
        label = "fused Adam" if fused else "stock Adam"
        if objective != "joint":
            label += f", {objective}"
        notes = "the suite's setting" if (batch, fused) == (BATCH, False) else ""
        bar = BARS[batch]
        if objective != "joint":
            notes = f"variant, reported separately (no bar; the default's is {bar:g}x)"
            bar = float("inf")
        results.append(
            PerfResult(
                id=f"P2 NeuMoSync (batch {batch}, {label})",
                what="time per iteration, NeuMoSync vs FastNaive, MLP 784-100-100-10",
                ours=t_ours,
                reference=t_naive,
                unit="s",
                ratio=t_ours / t_naive,
                bar=bar,
                notes=notes,
            )
        )
        if (batch, fused, objective) in FLOOR_CONFIGS:
            results.append(_floor(net, naive, exp, iters, repeats))
    overhead = net.parameter_overhead()
    main = sum(p.numel() for p in net.main.parameters())
    results.append(
        PerfResult(
            id="P2 NeuMoSync params",
            what="extra trainable parameters (NeuroSync, embeddings, projections) / MainNetwork",
            ours=float(net.extra_parameters()),
            reference=float(main),
            unit="params",
            ratio=overhead,
            bar=0.10,
            notes="ratio is a fraction (paper: 5-8%)",
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
