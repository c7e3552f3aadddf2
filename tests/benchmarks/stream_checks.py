"""Checks shared by the stream tests."""

from __future__ import annotations

import torch
from avalanche.training import Naive
from torch import nn
from torch.optim import SGD

from avalanche_neumod.models import MLP, ConvNet
from avalanche_neumod.training.template import FastNaive


def stream_tensors(bm) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(x, y, t) of every train then test experience."""
    exps = list(bm.train_stream) + list(bm.test_stream)
    return [(e.tensors.x, e.tensors.y, e.tensors.t) for e in exps]


def same_tensors(a, b) -> bool:
    ta, tb = stream_tensors(a), stream_tensors(b)
    return len(ta) == len(tb) and all(
        all(torch.equal(u, v) for u, v in zip(p, q)) for p, q in zip(ta, tb)
    )


def small_model(bm) -> nn.Module:
    c, h, w = bm.neumod_info["input_shape"]
    n = bm.neumod_info["num_classes"]
    if c == 1:
        return MLP(input_size=c * h * w, hidden_sizes=(16,), num_classes=n)
    return ConvNet(in_channels=c, num_classes=n, input_size=h, channels=4, hidden=16)


def train_first_experience(bm, fast: bool, mb_size: int = 32) -> dict:
    """Train experience 0 for one epoch with Avalanche's ``Naive`` (stock loaders) or
    our ``FastNaive``; return the eval metrics on test experience 0 and check that
    training changed the weights and that the number of updates is ceil(N / mb_size)."""
    torch.manual_seed(0)
    model = small_model(bm)
    before = [p.detach().clone() for p in model.parameters()]
    cls = FastNaive if fast else Naive
    strategy = cls(
        model=model,
        optimizer=SGD(model.parameters(), lr=0.01),
        criterion=nn.CrossEntropyLoss(),
        train_mb_size=mb_size,
        train_epochs=1,
        eval_mb_size=256,
        device="cpu",
    )
    exp = bm.train_stream[0]
    strategy.train(exp, num_workers=0)
    n = len(exp.dataset)
    assert strategy.clock.train_exp_iterations == -(-n // mb_size)
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), before))
    res = strategy.eval([bm.test_stream[0]], num_workers=0)
    acc = [v for k, v in res.items() if k.startswith("Top1_Acc_Stream/eval_phase/test_stream")]
    assert len(acc) == 1 and 0.0 <= acc[0] <= 1.0
    return res
