"""Shared fixtures: the real-data root, the test device and deterministic seeding."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def find_data_root() -> Path | None:
    """NEUMOD_DATA_ROOT, else ../shared/datasets beside the repo, else None."""
    env = os.environ.get("NEUMOD_DATA_ROOT")
    if env and Path(env).is_dir():
        return Path(env)
    shared = REPO.parent / "shared" / "datasets"
    return shared if shared.is_dir() else None


DEVICE_ENV = "NEUMOD_TEST_DEVICE"


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers",
        f"device: runs on the device named by ${DEVICE_ENV} (default cpu); "
        "benchmarks/gpu_check.sh selects these with -m device",
    )


@pytest.fixture(scope="session")
def device() -> torch.device:
    """The device the ``device``-marked tests run on: ``$NEUMOD_TEST_DEVICE``, default
    ``cpu``. An unavailable device stops the session with one line (never a skip)."""
    from avalanche_neumod.argument_rules import check_device  # the library's one device check

    try:
        return check_device(os.environ.get(DEVICE_ENV, "cpu"), f"${DEVICE_ENV}")
    except ValueError as e:
        raise pytest.UsageError(str(e)) from e


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = find_data_root()
    if root is None:
        pytest.skip("real data absent: set NEUMOD_DATA_ROOT or provide ../shared/datasets")
    return root


@pytest.fixture(scope="session")
def mnist_first(data_root):
    """``mnist_first(train, n)``: the first ``n`` MNIST images of the train (or test) set read
    with torchvision, float ``[n, 1, 28, 28]`` standardised with (0.1307, 0.3081), and their
    labels."""
    from torchvision.datasets import MNIST

    sets = {
        train: MNIST(root=str(data_root), train=train, download=False) for train in (True, False)
    }

    def first(train: bool, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        ds = sets[train]
        x = (ds.data[:n].float() / 255.0 - 0.1307) / 0.3081
        return x.unsqueeze(1), ds.targets[:n].clone()

    return first


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module of tiny-tensor tests (avoids oversubscribing the
    shared cores); use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    yield
