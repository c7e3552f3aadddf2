"""Class-Split CIFAR-100 (generated files) and Tiny-ImageNet (real, small)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from avalanche_neumod.benchmarks import class_split_cifar100, class_split_tiny_imagenet

sys.path.insert(0, str(Path(__file__).parent))
from cifar_files import write_cifar100  # noqa: E402
from stream_checks import same_tensors  # noqa: E402


@pytest.fixture(scope="module")
def c100_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("c100")
    write_cifar100(root, per_class=6, test_per_class=3)
    return root


@pytest.fixture(scope="module")
def bm(c100_root):
    return class_split_cifar100(n_experiences=10, seed=2, root=c100_root)


def test_groups_disjoint_and_cover(bm):
    groups = bm.class_groups
    assert groups.shape == (10, 10)
    assert sorted(groups.flatten().tolist()) == list(range(100))
    assert groups.flatten().tolist() != list(range(100))  # seeded order, not natural
    seen = set()
    for k, (tr, te) in enumerate(zip(bm.train_stream, bm.test_stream)):
        g = set(groups[k].tolist())
        assert set(tr.classes_in_this_experience) == g == set(te.classes_in_this_experience)
        assert len(tr.dataset) == 60 and len(te.dataset) == 30
        assert seen.isdisjoint(g)
        seen |= g
        assert tr.task_label == 0
    assert bm.neumod_info["num_classes"] == 100 and bm.neumod_info["input_shape"] == (3, 32, 32)


def test_task_scenario_and_relabel(c100_root):
    bm = class_split_cifar100(n_experiences=5, root=c100_root, scenario="task")
    assert [e.task_label for e in bm.train_stream] == [0, 1, 2, 3, 4]
    assert [e.task_label for e in bm.test_stream] == [0, 1, 2, 3, 4]
    rel = class_split_cifar100(
        n_experiences=5, root=c100_root, scenario="task", class_ids_from_zero_in_each_exp=True
    )
    for e, e0 in zip(rel.train_stream, bm.train_stream):
        assert set(e.classes_in_this_experience) == set(range(20))
        g = bm.class_groups[e.task_label]
        assert torch.equal(g[e.tensors.y], e0.tensors.y)  # position within the group
    assert rel.neumod_info["num_classes"] == 20


def test_class_orders(c100_root):
    nat = class_split_cifar100(n_experiences=4, root=c100_root, class_order="natural")
    assert nat.class_groups[0].tolist() == list(range(25))
    names = [f"fine{i}" for i in range(99, -1, -1)]
    rev = class_split_cifar100(n_experiences=4, root=c100_root, class_order=names)
    assert rev.class_groups[0].tolist() == list(range(99, 74, -1))


def test_seed_determinism(bm, c100_root):
    assert same_tensors(bm, class_split_cifar100(n_experiences=10, seed=2, root=c100_root))
    assert not same_tensors(bm, class_split_cifar100(n_experiences=10, seed=3, root=c100_root))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_experiences": 0}, "n_experiences"),
        ({"n_experiences": 3}, "divide"),
        ({"scenario": "domain"}, "scenario"),
        ({"class_order": "alphabetical"}, "class_order"),
        ({"class_order": [0, 1, 2]}, "exactly once"),
        ({"class_order": ["nope"] * 100}, "unknown class"),
        ({"train_per_class": 7}, "train_per_class"),
        ({"class_ids_from_zero_in_each_exp": True}, "scenario"),
    ],
)
def test_bad_arguments(c100_root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        class_split_cifar100(root=c100_root, **kwargs)


@pytest.fixture(scope="module")
def tiny(data_root):
    return class_split_tiny_imagenet(
        n_experiences=20, seed=0, root=data_root, train_per_class=4, test_per_class=2
    )


def test_tiny_imagenet(tiny, data_root):
    assert len(tiny.train_stream) == 20
    x = tiny.train_stream[0].tensors.x
    assert x.shape == (40, 3, 64, 64) and tiny.neumod_info["input_shape"] == (3, 64, 64)
    assert sorted(tiny.class_groups.flatten().tolist()) == list(range(200))
    for k, e in enumerate(tiny.test_stream):
        assert set(e.classes_in_this_experience) == set(tiny.class_groups[k].tolist())
        assert len(e.dataset) == 20
    again = class_split_tiny_imagenet(
        n_experiences=20, seed=0, root=data_root, train_per_class=4, test_per_class=2
    )
    assert same_tensors(tiny, again)
