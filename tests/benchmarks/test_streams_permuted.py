"""Permuted MNIST: identity first, one fixed permutation per task on train and test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from avalanche_neumod.benchmarks import load_mnist, permuted_mnist
from avalanche_neumod.benchmarks._common import MNIST, normalise

sys.path.insert(0, str(Path(__file__).parent))
from stream_checks import same_tensors  # noqa: E402


@pytest.fixture(scope="module")
def bm(data_root):
    return permuted_mnist(n_experiences=4, train_size=300, test_size=100, seed=3, root=data_root)


def test_shapes_and_info(bm):
    assert len(bm.train_stream) == len(bm.test_stream) == 4
    x = bm.train_stream[2].tensors.x
    assert x.shape == (300, 1, 28, 28) and x.dtype == torch.float32
    assert bm.test_stream[1].tensors.x.shape == (100, 1, 28, 28)
    assert bm.neumod_info["input_shape"] == (1, 28, 28) and bm.neumod_info["num_classes"] == 10
    assert all(e.task_label == 0 for e in bm.train_stream)
    assert all(len(e.classes_in_this_experience) == 10 for e in bm.train_stream)


def test_task0_identity_and_fixed_permutations(bm, data_root):
    perms = bm.permutations
    assert torch.equal(perms[0], torch.arange(784))
    assert len({tuple(p.tolist()) for p in perms}) == 4
    x0_tr, x0_te = bm.train_stream[0].tensors.x, bm.test_stream[0].tensors.x
    # task 0 is the normalised raw images
    d = load_mnist(data_root)
    assert len(set(bm.train_indices.tolist())) == 300
    assert torch.equal(x0_tr, normalise(d.x_train[bm.train_indices], MNIST))
    assert torch.equal(x0_te, normalise(d.x_test[bm.test_indices], MNIST))
    assert torch.equal(bm.train_stream[0].tensors.y, d.y_train[bm.train_indices])
    for k in range(1, 4):
        p = perms[k]
        assert torch.equal(bm.train_stream[k].tensors.x.flatten(1), x0_tr.flatten(1)[:, p])
        assert torch.equal(bm.test_stream[k].tensors.x.flatten(1), x0_te.flatten(1)[:, p])
        assert torch.equal(bm.train_stream[k].tensors.y, bm.train_stream[0].tensors.y)
        assert torch.equal(bm.test_stream[k].tensors.y, bm.test_stream[0].tensors.y)
        assert not torch.equal(bm.train_stream[k].tensors.x, x0_tr)


def test_seed_determinism(bm, data_root):
    again = permuted_mnist(n_experiences=4, train_size=300, test_size=100, seed=3, root=data_root)
    other = permuted_mnist(n_experiences=4, train_size=300, test_size=100, seed=4, root=data_root)
    assert same_tensors(bm, again)
    assert not same_tensors(bm, other)
    assert not torch.equal(bm.permutations[1], other.permutations[1])


def test_task_labels(data_root):
    bm = permuted_mnist(3, 50, 20, root=data_root, task_labels=True)
    assert [e.task_label for e in bm.train_stream] == [0, 1, 2]
    assert [e.task_label for e in bm.test_stream] == [0, 1, 2]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_experiences": 0}, "n_experiences"),
        ({"train_size": 60001}, "train_size"),
        ({"test_size": 10001}, "test_size"),
        ({"train_size": 0}, "train_size"),
    ],
)
def test_bad_arguments(data_root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        permuted_mnist(root=data_root, **kwargs)
