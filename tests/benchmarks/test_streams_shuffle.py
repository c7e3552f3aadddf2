"""Shuffle CIFAR-10: one class-id permutation per task, on train and test alike."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from avalanche_neumod.benchmarks import load_cifar10, shuffle_cifar10
from avalanche_neumod.benchmarks._common import distinct_permutations

sys.path.insert(0, str(Path(__file__).parent))
from stream_checks import same_tensors  # noqa: E402

KW = dict(n_experiences=4, train_size=300, test_size=100, pool_per_class=60)


@pytest.fixture(scope="module")
def bm(data_root):
    return shuffle_cifar10(seed=5, root=data_root, **KW)


def test_one_permutation_per_task_on_train_and_test(bm, data_root):
    perms = bm.class_permutations
    assert torch.equal(perms[0], torch.arange(10))
    assert len({tuple(p.tolist()) for p in perms}) == 4
    d = load_cifar10(data_root, train_per_class=60, test_per_class=60)
    y_tr, y_te = d.y_train[bm.train_indices], d.y_test[bm.test_indices]
    x_tr = bm.train_stream[0].tensors.x
    for k, p in enumerate(perms):
        tr, te = bm.train_stream[k].tensors, bm.test_stream[k].tensors
        assert torch.equal(tr.y, p[y_tr]) and torch.equal(te.y, p[y_te])
        assert tr.x is x_tr  # same inputs, only the concept changes
        assert len(bm.train_stream[k].classes_in_this_experience) == 10
    assert not torch.equal(bm.train_stream[1].tensors.y, bm.train_stream[0].tensors.y)


def test_seed_determinism(bm, data_root):
    assert same_tensors(bm, shuffle_cifar10(seed=5, root=data_root, **KW))
    assert not same_tensors(bm, shuffle_cifar10(seed=6, root=data_root, **KW))


def test_bad_arguments(data_root):
    with pytest.raises(ValueError, match="n_experiences"):
        shuffle_cifar10(n_experiences=0, root=data_root)
    with pytest.raises(ValueError, match="train_size"):
        shuffle_cifar10(root=data_root, train_size=700, pool_per_class=60)
    with pytest.raises(ValueError, match="distinct"):
        distinct_permutations(7, 3, torch.Generator())
