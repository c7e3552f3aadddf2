"""Avalanche's checkpointing round trip with our strategies (``avalanche_neumod.checkpointing``)."""

from __future__ import annotations

import os

import pytest
import torch
from avalanche.training.plugins import EvaluationPlugin

from avalanche_neumod.benchmarks import ExperienceTensors, tensor_benchmark
from avalanche_neumod.checkpointing import maybe_load_checkpoint, save_checkpoint
from avalanche_neumod.models import MLP
from avalanche_neumod.training import CBP, NGMSGD, NeuMoSync


def _bm():
    g = torch.Generator().manual_seed(0)

    def exp(n):
        return ExperienceTensors(
            torch.randn(n, 6, generator=g),
            torch.randint(0, 3, (n,), generator=g),
            torch.zeros(n, dtype=torch.long),
        )

    return tensor_benchmark([exp(24) for _ in range(3)], [exp(8)])


def _strategy(name: str):
    torch.manual_seed(1)
    model = MLP(input_size=6, hidden_sizes=(8,), num_classes=3)
    kw = dict(train_mb_size=4, evaluator=EvaluationPlugin(loggers=[]))
    if name == "NeuMoSync":
        return NeuMoSync(model=model, **kw)
    if name == "NGMSGD":
        return NGMSGD(model=model, eta=0.3, **kw)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return CBP(model=model, optimizer=opt, rho=0.05, m=1, **kw)


def _state(strategy) -> dict:
    return {k: v.clone() for k, v in strategy.model.state_dict().items()}


@pytest.mark.parametrize("name", ["NeuMoSync", "NGMSGD", "CBP"])
def test_resumed_run_equals_uninterrupted(tmp_path, name):
    bm = _bm()
    torch.manual_seed(2)
    ref = _strategy(name)
    for exp in bm.train_stream:
        ref.train(exp)
    want = _state(ref)

    fname = tmp_path / "ckpt.pkl"
    torch.manual_seed(2)
    first = _strategy(name)
    first.train(bm.train_stream[0])
    save_checkpoint(first, fname)
    del first

    torch.manual_seed(99)  # the resumed process starts from elsewhere: the file restores it
    resumed, start = maybe_load_checkpoint(_strategy(name), fname)
    assert start == 1
    for exp in bm.train_stream[start:]:
        resumed.train(exp)
    got = _state(resumed)
    assert got.keys() == want.keys()
    for k in want:
        assert torch.equal(got[k], want[k]), k


def test_failed_save_leaves_previous_checkpoint(tmp_path, monkeypatch):
    bm = _bm()
    s = _strategy("CBP")
    s.train(bm.train_stream[0])
    fname = tmp_path / "ckpt.pkl"
    save_checkpoint(s, fname)
    before = fname.read_bytes()

    import avalanche.checkpointing as av

    def broken(strategy, f, exclude=None):
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04 truncated")
        raise RuntimeError("disk full")

    monkeypatch.setattr(av, "save_checkpoint", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(s, fname)
    assert fname.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pkl"]
    monkeypatch.undo()
    _, start = maybe_load_checkpoint(_strategy("CBP"), fname)
    assert start == 1
