"""Small real streams for the metric tests: permuted MNIST, a few hundred samples, T = 3."""

from __future__ import annotations

import pytest
import torch

from avalanche_neumod import ExperienceTensors, tensor_benchmark


@pytest.fixture(scope="session")
def mnist_small(data_root):
    from torchvision.datasets import MNIST

    tr = MNIST(root=str(data_root), train=True, download=False)
    te = MNIST(root=str(data_root), train=False, download=False)

    def prep(ds, n):
        x = (ds.data[:n].float() / 255.0 - 0.1307) / 0.3081
        return x.unsqueeze(1), ds.targets[:n].clone()

    return prep(tr, 1200), prep(te, 600)


def permuted_stream(mnist_small, n_experiences=3, n_train=240, n_test=200, seed=0):
    (xtr, ytr), (xte, yte) = mnist_small
    g = torch.Generator().manual_seed(seed)
    train, test = [], []
    for k in range(n_experiences):
        perm = torch.arange(784) if k == 0 else torch.randperm(784, generator=g)

        def p(x, perm=perm):
            return x.flatten(1)[:, perm].view(-1, 1, 28, 28)

        train.append(ExperienceTensors(p(xtr[:n_train]), ytr[:n_train], 0))
        test.append(ExperienceTensors(p(xte[:n_test]), yte[:n_test], 0))
    return tensor_benchmark(train, test)


@pytest.fixture
def make_pmnist(mnist_small):
    """``make_pmnist(n_experiences=3, n_train=240, n_test=200, seed=0)`` -> benchmark."""

    def make(**kwargs):
        return permuted_stream(mnist_small, **kwargs)

    return make
