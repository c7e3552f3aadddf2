"""Shared fixtures: the real-data root and deterministic seeding."""

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


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = find_data_root()
    if root is None:
        pytest.skip("real data absent: set NEUMOD_DATA_ROOT or provide ../shared/datasets")
    return root


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    yield
