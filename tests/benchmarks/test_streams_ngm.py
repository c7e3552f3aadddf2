"""NGM-SGD streams: fixed iterations (with-replacement samples), joint unions, constructions."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from avalanche_neumod.benchmarks import (
    domain_cifar100,
    load_mnist,
    ngm_permuted_mnist,
    rotated_mnist,
    split_cifar10,
    split_mnist,
)
from avalanche_neumod.benchmarks._common import MNIST, normalise

sys.path.insert(0, str(Path(__file__).parent))
from cifar_files import write_cifar100  # noqa: E402
from stream_checks import same_tensors, train_first_experience  # noqa: E402

SMALL = dict(iterations=6, batch_size=16, train_size=2000, test_size=300)


@pytest.fixture(scope="module")
def split(data_root):
    return split_mnist(seed=1, root=data_root, **SMALL)


def test_split_mnist_joint_sizes_and_classes(split):
    assert len(split.train_stream) == 5
    for k, (tr, te) in enumerate(zip(split.train_stream, split.test_stream)):
        assert len(tr.dataset) == 6 * 16 and tr.iterations == 6 and tr.batch_size == 16
        # joint: the sample comes from the union of pairs 0..k
        assert set(tr.tensors.y.tolist()) <= set(range(2 * k + 2))
        assert set(te.classes_in_this_experience) == {2 * k, 2 * k + 1}
    last = split.train_stream[4].tensors.y
    assert len(set(last.tolist())) == 10  # all ten digits reached in the last union
    assert split.neumod_info["iterations"] == 6 and split.neumod_info["joint"] is True


def test_split_mnist_single_and_with_replacement(data_root):
    bm = split_mnist(
        seed=1, root=data_root, joint=False, iterations=50, batch_size=40, train_size=500
    )
    pool = bm.neumod_pool
    for k, tr in enumerate(bm.train_stream):
        assert set(tr.classes_in_this_experience) == {2 * k, 2 * k + 1}
        idx = tr.tensors.index
        lo, hi = bm.neumod_pool_offsets[k], bm.neumod_pool_offsets[k + 1]
        assert int(idx.min()) >= lo and int(idx.max()) < hi
        assert len(idx) == 2000 > hi - lo  # more draws than items: repeats are required
        assert len(torch.unique(idx)) < len(idx)
        assert torch.equal(tr.tensors.x, pool.x[idx])


def test_rotated_mnist(data_root):
    bm = rotated_mnist(seed=0, root=data_root, **SMALL)
    te = [e.tensors for e in bm.test_stream]
    assert bm.neumod_info["angles"] == [0.0, 80.0, 160.0]
    assert torch.equal(te[0].y, te[1].y) and torch.equal(te[1].y, te[2].y)
    # angle 0 is the plain (standardised) test subset
    d = load_mnist(data_root)
    x0 = te[0].x
    plain = normalise(d.x_test, MNIST)
    assert all((plain.flatten(1) == row).all(1).any() for row in x0[:5].flatten(1))
    assert not torch.equal(te[1].x, x0) and not torch.equal(te[2].x, te[1].x)
    # rotating back by -80 degrees recovers most of the digit mass
    from torchvision.transforms.functional import rotate

    back = rotate(
        te[1].x,
        -80.0,
        fill=float(normalise(torch.zeros(1, 1, 1, 1, dtype=torch.uint8), MNIST)),
    )
    centre = slice(8, 20)
    err = (back[..., centre, centre] - x0[..., centre, centre]).abs().mean()
    assert err < 0.5 * (te[1].x[..., centre, centre] - x0[..., centre, centre]).abs().mean()


def test_ngm_permuted_mnist(data_root):
    bm = ngm_permuted_mnist(seed=0, root=data_root, **SMALL)
    assert len(bm.train_stream) == 3
    assert torch.equal(bm.permutations[0], torch.arange(784))
    te = [e.tensors for e in bm.test_stream]
    for k in (1, 2):
        assert torch.equal(te[k].x.flatten(1), te[0].x.flatten(1)[:, bm.permutations[k]])
    # joint: experience 2 samples from all three permuted pools
    idx = bm.train_stream[2].tensors.index
    offs = bm.neumod_pool_offsets
    assert all(((idx >= offs[k]) & (idx < offs[k + 1])).any() for k in range(3))
    assert not bm.train_stream[0].tensors.index.ge(offs[1]).any()


def test_split_cifar10(data_root):
    bm = split_cifar10(
        seed=0, root=data_root, iterations=3, batch_size=8, train_per_class=20, test_per_class=10
    )
    assert bm.neumod_info["input_shape"] == (3, 32, 32)
    assert [len(e.dataset) for e in bm.train_stream] == [24] * 5
    assert [len(e.dataset) for e in bm.test_stream] == [20] * 5
    assert set(bm.test_stream[3].classes_in_this_experience) == {6, 7}
    train_first_experience(bm, fast=False, mb_size=8)


@pytest.fixture(scope="module")
def c100_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("c100ngm")
    write_cifar100(root, per_class=4, test_per_class=2)
    return root


def test_domain_cifar100(c100_root):
    bm = domain_cifar100(seed=0, root=c100_root, iterations=4, batch_size=16, joint=False)
    # superclass c has fine classes 5c..5c+4 (generated files): split 2, 2, 1
    assert bm.fine_groups[0].tolist() == sorted([5 * c + i for c in range(20) for i in (0, 1)])
    assert bm.fine_groups[2].tolist() == [5 * c + 4 for c in range(20)]
    assert bm.neumod_info["num_classes"] == 20
    pool = bm.neumod_pool
    for k, te in enumerate(bm.test_stream):
        assert set(te.classes_in_this_experience) == set(range(20))  # label space kept
        assert len(te.dataset) == 2 * len(bm.fine_groups[k])
    o = bm.neumod_pool_offsets
    assert [o[k + 1] - o[k] for k in range(3)] == [160, 160, 80]
    assert pool.y.max() == 19
    with pytest.raises(ValueError, match="fine classes"):
        domain_cifar100(n_experiences=6, root=c100_root)


@pytest.mark.parametrize(
    "fn, kwargs, match",
    [
        (split_mnist, {"iterations": 0}, "iterations"),
        (split_mnist, {"batch_size": 0}, "batch_size"),
        (split_mnist, {"scenario": "domain"}, "scenario"),
        (split_mnist, {"train_size": 60001}, "train_size"),
        (rotated_mnist, {"angles": ()}, "angles"),
        (ngm_permuted_mnist, {"n_experiences": 0}, "n_experiences"),
    ],
)
def test_bad_arguments(data_root, fn, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fn(root=data_root, **kwargs)


def test_seed_determinism(split, data_root):
    assert same_tensors(split, split_mnist(seed=1, root=data_root, **SMALL))
    assert not same_tensors(split, split_mnist(seed=2, root=data_root, **SMALL))


@pytest.mark.parametrize("fast", [False, True])
def test_fixed_iterations_with_naive(split, fast):
    # one epoch at train_mb_size=batch_size makes exactly `iterations` updates
    train_first_experience(split, fast, mb_size=split.neumod_info["batch_size"])


@pytest.mark.parametrize("fast", [False, True])
def test_domain_cifar100_trains(c100_root, fast):
    bm = domain_cifar100(root=c100_root, iterations=3, batch_size=8)
    train_first_experience(bm, fast, mb_size=8)
