"""recurring() and joint(): order, sizes, identities; registry; augmentation."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from avalanche_neumod.benchmarks import (
    joint,
    permuted_mnist,
    random_label_cifar10,
    random_label_mnist,
    recurring,
    split_mnist,
)
from avalanche_neumod.benchmarks._common import RandomCropFlip

sys.path.insert(0, str(Path(__file__).parent))
from stream_checks import train_first_experience  # noqa: E402


@pytest.fixture(scope="module")
def base(data_root):
    return permuted_mnist(n_experiences=4, train_size=100, test_size=50, seed=0, root=data_root)


def test_recurring_order_and_identity(base):
    r = recurring(base)
    assert r.train_order == [0, 1, 0, 2, 0, 3]
    assert [e.task_id for e in r.train_stream] == [0, 1, 0, 2, 0, 3]
    assert [e.recurring for e in r.train_stream] == [True, False, True, False, True, False]
    for e, i in zip(r.train_stream, r.train_order):
        assert e.tensors is base.train_stream[i].tensors  # R is the same data each time
        assert len(e.dataset) == 100
    assert len(r.test_stream) == 4 and r.recurring_test_experiences == [0]
    assert r.test_stream[0].recurring and not r.test_stream[1].recurring
    assert torch.equal(r.test_stream[0].tensors.x, base.test_stream[0].tensors.x)
    assert r.neumod_info["variant"] == "recurring" and r.neumod_info["n_experiences"] == 6
    r3 = recurring(base, every=3)
    assert r3.train_order == [0, 1, 2, 0, 3]


def test_recurring_keeps_task_labels(data_root):
    bm = permuted_mnist(3, 50, 20, root=data_root, task_labels=True)
    r = recurring(bm)
    assert [e.task_label for e in r.train_stream] == [0, 1, 0, 2]


def test_joint_union(base):
    j = joint(base)
    assert [len(e.dataset) for e in j.train_stream] == [100, 200, 300, 400]
    for k, e in enumerate(j.train_stream):
        parts = [base.train_stream[i].tensors for i in range(k + 1)]
        assert torch.equal(e.tensors.x, torch.cat([p.x for p in parts]))
        assert torch.equal(e.tensors.y, torch.cat([p.y for p in parts]))
    assert all(
        torch.equal(a.tensors.x, b.tensors.x) for a, b in zip(j.test_stream, base.test_stream)
    )
    assert j.neumod_info["joint"] is True


def test_joint_of_ngm_stream_equals_generator_joint(data_root):
    kw = dict(iterations=4, batch_size=8, train_size=600, seed=3, root=data_root)
    single = split_mnist(joint=False, **kw)
    wrapped = joint(single)
    direct = split_mnist(joint=True, **kw)
    assert [len(e.dataset) for e in wrapped.train_stream] == [32] * 5
    for a, b in zip(wrapped.train_stream, direct.train_stream):
        assert torch.equal(a.tensors.x, b.tensors.x) and torch.equal(a.tensors.y, b.tensors.y)
        assert a.iterations == 4 and a.batch_size == 8


@pytest.mark.parametrize("fast", [False, True])
def test_variants_train_with_naive(base, fast):
    train_first_experience(recurring(base), fast)
    j = joint(base)
    train_first_experience(j, fast)


def test_bad_arguments(base, data_root):
    with pytest.raises(ValueError, match="every"):
        recurring(base, every=1)
    with pytest.raises(ValueError, match="at least 2"):
        recurring(permuted_mnist(1, 50, 20, root=data_root))
    with pytest.raises(ValueError, match="joint or recurring"):
        joint(recurring(base))
    with pytest.raises(ValueError, match="recurring"):
        recurring(joint(base))
    with pytest.raises(ValueError, match="already"):
        joint(split_mnist(iterations=2, batch_size=4, train_size=200, root=data_root))


def test_random_crop_flip_is_a_padded_crop():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 8, 8)
    t = RandomCropFlip(padding=2, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), generator=g)
    out = t(x)
    assert out.shape == x.shape
    fill = -0.5 / 0.25
    padded = torch.full((64, 3, 12, 12), fill)
    padded[:, :, 2:10, 2:10] = x
    flips = 0
    for i in range(64):
        cands = [
            padded[i, :, a : a + 8, b : b + 8].flip(-1) if f else padded[i, :, a : a + 8, b : b + 8]
            for a in range(5)
            for b in range(5)
            for f in (False, True)
        ]
        hit = [k for k, c in enumerate(cands) if torch.equal(c, out[i])]
        assert hit, f"sample {i} is not a crop/flip of its padded input"
        flips += hit[0] % 2
    assert 10 < flips < 54  # about half are flipped
    assert t(x[0]).shape == (3, 8, 8)  # one image (the per-sample path)


def test_augment_sets_both_paths(data_root):
    bm = random_label_cifar10(
        n_experiences=1, n_samples=20, root=data_root, augment=True, pool_per_class=10
    )
    exp = bm.train_stream[0]
    assert isinstance(exp.train_batch_transform, RandomCropFlip)
    x_sample = exp.dataset.train()[0][0]
    torch.manual_seed(1)
    samples = [exp.dataset.train()[0][0] for _ in range(8)]
    assert any(not torch.equal(s, exp.tensors.x[0]) for s in samples)
    assert x_sample.shape == (3, 32, 32)
    # evaluation is never augmented
    assert torch.equal(bm.test_stream[0].dataset.eval()[0][0], bm.test_stream[0].tensors.x[0])
    plain = random_label_mnist(n_experiences=1, n_samples=20, root=data_root)
    assert plain.train_stream[0].train_batch_transform is None


def test_recurring_ngm_stream_keeps_schedule(data_root):
    bm = split_mnist(iterations=3, batch_size=8, train_size=300, root=data_root, joint=False)
    r = recurring(bm)
    assert r.train_order == [0, 1, 0, 2, 0, 3, 0, 4]
    assert all(e.iterations == 3 and e.batch_size == 8 for e in r.train_stream)
    assert all(len(e.dataset) == 24 for e in r.train_stream)
    assert r.train_stream[2].tensors is bm.train_stream[0].tensors


def test_sampled_tensors_gather_and_keep_one():
    from avalanche_neumod.benchmarks import ExperienceTensors, SampledTensors

    pool = ExperienceTensors(torch.arange(10.0).view(10, 1), torch.arange(10), torch.zeros(10))
    a = SampledTensors(pool, torch.tensor([3, 3, 9]))
    b = SampledTensors(pool, torch.tensor([0, 1]))
    assert a.x.flatten().tolist() == [3.0, 3.0, 9.0] and a.y.tolist() == [3, 3, 9]
    assert a.x is a.x  # kept while it is the last one read
    xa = a.x
    assert b.x.flatten().tolist() == [0.0, 1.0]
    assert a.x is not xa and torch.equal(a.x, xa)  # re-gathered after another was read
    assert len(a.subset(torch.tensor([0, 2]))) == 2 and a.subset(torch.tensor([2])).y.item() == 9
    assert a == ExperienceTensors(xa.clone(), a.y, a.t)
    with pytest.raises(ValueError, match="out of range"):
        SampledTensors(pool, torch.tensor([10]))
