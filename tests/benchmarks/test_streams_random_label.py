"""Random-Label MNIST / CIFAR-10: class counts kept, labels re-drawn, eval on same images."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from avalanche_neumod.benchmarks import random_label_cifar10, random_label_mnist

sys.path.insert(0, str(Path(__file__).parent))
from stream_checks import same_tensors  # noqa: E402


@pytest.fixture(scope="module")
def bm(data_root):
    return random_label_mnist(n_experiences=3, n_samples=400, seed=1, root=data_root)


def test_labels_redrawn_with_counts_kept(bm):
    y_true = bm.true_labels
    counts = torch.bincount(y_true, minlength=10)
    x0 = bm.train_stream[0].tensors.x
    labels = []
    for tr, te in zip(bm.train_stream, bm.test_stream):
        y = tr.tensors.y
        assert torch.equal(torch.bincount(y, minlength=10), counts)
        assert tr.tensors.x is x0  # the same images in every task
        assert te.tensors.x is x0 and torch.equal(te.tensors.y, y)  # eval: same images, task labels
        # labels carry (almost) nothing about the images: agreement near chance
        assert (y == y_true).float().mean() < 0.3
        labels.append(y)
    assert not torch.equal(labels[0], labels[1]) and not torch.equal(labels[1], labels[2])
    assert x0.shape == (400, 1, 28, 28)
    assert "memorisation" in bm.neumod_info["accuracy"]


def test_seed_determinism(bm, data_root):
    again = random_label_mnist(n_experiences=3, n_samples=400, seed=1, root=data_root)
    other = random_label_mnist(n_experiences=3, n_samples=400, seed=2, root=data_root)
    assert same_tensors(bm, again) and not same_tensors(bm, other)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n_experiences": 0}, "n_experiences"), ({"n_samples": 70000}, "n_samples")],
)
def test_bad_arguments(data_root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        random_label_mnist(root=data_root, **kwargs)


@pytest.fixture(scope="module")
def cifar(data_root):
    return random_label_cifar10(
        n_experiences=2, n_samples=200, seed=0, root=data_root, pool_per_class=100
    )


def test_cifar10(cifar, data_root):
    x = cifar.train_stream[0].tensors.x
    assert x.shape == (200, 3, 32, 32) and cifar.neumod_info["num_classes"] == 10
    assert abs(float(x.mean())) < 0.3  # standardised
    y0, y1 = cifar.train_stream[0].tensors.y, cifar.train_stream[1].tensors.y
    assert torch.equal(torch.bincount(y0, minlength=10), torch.bincount(y1, minlength=10))
    assert not torch.equal(y0, y1)
    again = random_label_cifar10(
        n_experiences=2, n_samples=200, seed=0, root=data_root, pool_per_class=100
    )
    assert same_tensors(cifar, again)
