"""Every registered stream, built small: seed determinism, metadata (with the accuracy kind
the experiment cell reads), training with Naive."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from avalanche_neumod.benchmarks import STREAMS, get_stream, joint, recurring
from avalanche_neumod.benchmarks._common import stream_info
from avalanche_neumod.experiment.cell import summarise
from avalanche_neumod.records import accuracy_kind

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
# memorisation streams: accuracy is read on each task right after it (the diagonal)
MEMORISATION = {"random_label_mnist", "random_label_cifar10"}


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


@pytest.mark.parametrize("name", sorted(SMALL))
def test_accuracy_kind_declared_and_kept_by_wrappers(name, data_root, c100_root):
    bm = _build(name, 0, data_root, c100_root)
    kind = "end_of_task" if name in MEMORISATION else "final"
    assert bm.neumod_info["accuracy_kind"] == kind
    assert recurring(bm).neumod_info["accuracy_kind"] == kind
    if not bm.neumod_info.get("joint"):  # the NGM streams are joint already
        assert joint(bm).neumod_info["accuracy_kind"] == kind
    # the experiment cell averages the diagonal (end_of_task) or the last row (final)
    s = summarise([[0.5, 0.1], [0.2, 0.9]], [0.3, 0.55], bm.neumod_info, [1, 1], complete=True)
    assert s["avg_accuracy_kind"] == kind
    assert s["avg_accuracy"] == pytest.approx(0.7 if kind == "end_of_task" else 0.55)


def test_cell_reads_the_declared_field_not_the_prose():
    assert accuracy_kind({"accuracy_kind": "end_of_task"}) == "end_of_task"
    # a stream without the field (e.g. a user's) is scored by final accuracy,
    # whatever its description says
    assert accuracy_kind({"accuracy": "memorisation of random labels"}) == "final"
    assert accuracy_kind({}) == "final"
    with pytest.raises(ValueError, match="valid: 'final', 'end_of_task'"):
        accuracy_kind({"accuracy_kind": "diagonal"})
    with pytest.raises(ValueError, match="valid: 'final', 'end_of_task'"):
        stream_info("s", (1, 2, 2), 2, "domain", "acc", accuracy_kind="diagonal")


def test_unknown_name():
    with pytest.raises(ValueError, match="valid: class_split_cifar100, class_split_tiny"):
        get_stream("permuted_cifar")
