"""Every registered stream, built small: seed determinism, metadata, training with Naive."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from avalanche_neumod.benchmarks import STREAMS, get_stream

sys.path.insert(0, str(Path(__file__).parent))
from cifar_files import write_cifar100  # noqa: E402
from stream_checks import same_tensors, train_first_experience  # noqa: E402

NGM = dict(iterations=3, batch_size=8)
SMALL = {
    "permuted_mnist": dict(n_experiences=2, train_size=64, test_size=32),
    "random_label_mnist": dict(n_experiences=2, n_samples=64),
    "random_label_cifar10": dict(n_experiences=2, n_samples=64, pool_per_class=20),
    "shuffle_cifar10": dict(n_experiences=2, train_size=64, test_size=32, pool_per_class=20),
    "class_split_cifar100": dict(n_experiences=5),
    "class_split_tiny_imagenet": dict(n_experiences=20, train_per_class=2, test_per_class=1),
    "split_mnist": dict(train_size=300, test_size=100, **NGM),
    "rotated_mnist": dict(train_size=100, test_size=50, **NGM),
    "ngm_permuted_mnist": dict(train_size=100, test_size=50, **NGM),
    "split_cifar10": dict(train_per_class=8, test_per_class=4, **NGM),
    "domain_cifar100": dict(**NGM),
}
CIFAR100 = {"class_split_cifar100", "domain_cifar100"}


@pytest.fixture(scope="module")
def c100_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("c100reg")
    write_cifar100(root, per_class=3, test_per_class=2)
    return root


def _build(name, seed, data_root, c100_root):
    root = c100_root if name in CIFAR100 else data_root
    return get_stream(name, seed=seed, root=root, **SMALL[name])


def test_every_stream_listed():
    assert set(SMALL) == set(STREAMS)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_stream(name, data_root, c100_root):
    bm = _build(name, 0, data_root, c100_root)
    info = bm.neumod_info
    assert info["name"] == name and info["n_experiences"] == len(bm.train_stream)
    assert tuple(bm.train_stream[0].tensors.x.shape[1:]) == info["input_shape"]
    assert int(bm.train_stream[-1].tensors.y.max()) < info["num_classes"]
    assert info["accuracy"] and all(e.classes_in_this_experience for e in bm.train_stream)
    assert same_tensors(bm, _build(name, 0, data_root, c100_root))
    assert not same_tensors(bm, _build(name, 1, data_root, c100_root))
    mb = info.get("batch_size", 16)
    train_first_experience(bm, fast=False, mb_size=mb)
    train_first_experience(bm, fast=True, mb_size=mb)


def test_unknown_name():
    with pytest.raises(ValueError, match="valid: class_split_cifar100, class_split_tiny"):
        get_stream("permuted_cifar")
