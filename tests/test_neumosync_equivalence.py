"""The optimised NeuMoSync computes what the implementation before the cost work did:
fixed-seed runs against the stored reference (``tests/neumosync_reference.py``)."""

from __future__ import annotations

import pytest
import torch
from neumosync_reference import CONFIGS, REFERENCE, run_reference


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def reference() -> dict:
    return torch.load(REFERENCE)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_same_losses_alphas_outputs(reference, name):
    ref, now = reference[name], run_reference(name)
    assert len(now["losses"]) == len(ref["losses"]) == 6
    torch.testing.assert_close(now["losses"], ref["losses"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(now["alphas"], ref["alphas"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(now["outputs"], ref["outputs"], rtol=1e-4, atol=1e-5)
