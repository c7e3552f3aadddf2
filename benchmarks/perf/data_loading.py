"""D1, dataset decoding and D2, sampled (index-backed) experiences.

D1: loading CIFAR-10 from class folders of JPEGs (``cifar10-jpeg``) into uint8 tensors with
our loader (files read, then one batched ``torchvision.io.decode_jpeg`` call), against
torchvision's ``ImageFolder`` with ``PILToTensor`` iterated and stacked (what a user would
write otherwise), same files, caches cleared. Bar (ours): at most 0.6x the reference.

D2: one epoch of ``FastNaive`` (MLP 784-100-100-10, batch 128) over an NGM experience stored
as indices into a pool (``SampledTensors``, gathered when read), against the same samples
stored as a plain tensor copy. Bar: at most 1.1x (the memory saving costs little time).
Both need the real data (``NEUMOD_DATA_ROOT`` or ``../shared/datasets``); absent, they are
skipped."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from avalanche.training.plugins import EvaluationPlugin
from common import PerfResult, interleaved_times, median, seeded_mlp
from torch import nn

from avalanche_neumod.benchmarks import datasets as ds
from avalanche_neumod.benchmarks import split_mnist
from avalanche_neumod.benchmarks.tensor_data import ExperienceTensors, tensor_benchmark
from avalanche_neumod.training import FastNaive


def _root() -> Path | None:
    env = os.environ.get("NEUMOD_DATA_ROOT")
    for p in (
        env,
        Path(__file__).resolve().parents[3] / "shared" / "datasets",
        "/work/shared/datasets",
    ):
        if p and Path(p).is_dir():
            return Path(p)
    return None


def _d1(root: Path, quick: bool) -> PerfResult:
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import PILToTensor

    folder = root / "cifar10-jpeg"
    k = 200 if quick else 1000

    def ours():
        ds.clear_cache()
        d = ds.load_image_folder(folder, train_per_class=k, test_per_class=k)
        return d.x_train.shape

    def reference():
        out = []
        for split in ("train", "test"):
            f = ImageFolder(str(folder / split), transform=PILToTensor())
            keep = [
                i for c in range(10) for i in [j for j, t in enumerate(f.targets) if t == c][:k]
            ]
            out.append(torch.stack([f[i][0] for i in keep]))
        return out[0].shape

    t = interleaved_times({"ours": ours, "ref": reference}, repeats=2 if quick else 3)
    return PerfResult.wall_time(
        "D1",
        f"decode CIFAR-10 JPEG folders, {20 * k} images: our loader vs ImageFolder+PIL",
        median(t["ours"]),
        median(t["ref"]),
        0.6,
    )


def _d2(root: Path, quick: bool) -> PerfResult:
    iters, bs = (50, 128) if quick else (400, 128)
    bm = split_mnist(iterations=iters, batch_size=bs, root=root, joint=True, seed=0)
    exp_sampled = bm.train_stream[-1]
    d = exp_sampled.tensors
    plain = tensor_benchmark(
        [ExperienceTensors(d.x.clone(), d.y, d.t)], [bm.test_stream[0].tensors]
    )
    exp_plain = plain.train_stream[0]

    def make():
        model = seeded_mlp()
        return FastNaive(
            model=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
            criterion=nn.CrossEntropyLoss(),
            train_mb_size=bs,
            train_epochs=1,
            device="cpu",
            evaluator=EvaluationPlugin(loggers=[]),
        )

    def run(exp):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make().train(exp, eval_streams=[])

    t = interleaved_times(
        {"sampled": lambda: run(exp_sampled), "plain": lambda: run(exp_plain)},
        repeats=3 if quick else 5,
    )
    return PerfResult.wall_time(
        "D2",
        f"FastNaive epoch on an NGM experience ({iters} x {bs}): index-backed vs copied",
        median(t["sampled"]),
        median(t["plain"]),
        1.1,
    )


def run(quick: bool) -> list[PerfResult]:
    root = _root()
    if root is None:
        return []
    return [_d1(root, quick), _d2(root, quick)]


if __name__ == "__main__":
    import sys

    for res in run(quick="--quick" in sys.argv):
        print(res)
