"""The optimised NeuMoSync computes what the implementation before the cost work did:
fixed-seed runs against the stored reference (``tests/neumosync_reference.py``); and a
given optimizer switched to ``foreach`` makes the same update as its loop."""

from __future__ import annotations

import pytest
import torch
from neumosync_reference import CONFIGS, REFERENCE, run_reference


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


def _trained_with_given_adam(foreach) -> tuple[list[float], dict]:
    """Six iterations with a given stock Adam (``foreach`` as given) from seed 0: the
    ``foreach`` the strategy left on it and the network's final state."""
    from avalanche_neumod.benchmarks.tensor_data import ExperienceTensors, tensor_benchmark
    from avalanche_neumod.models import MLP
    from avalanche_neumod.models.neumosync import NeuMoSyncNetwork
    from avalanche_neumod.training.neumosync import NeuMoSync

    torch.manual_seed(0)
    net = NeuMoSyncNetwork(MLP(input_size=20, hidden_sizes=(9, 7), num_classes=3))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, foreach=foreach)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(96, 20, generator=g), torch.randint(0, 3, (96,), generator=g)
    bm = tensor_benchmark([ExperienceTensors(x, y, 0)], [ExperienceTensors(x, y, 0)])
    strategy = NeuMoSync(model=net, optimizer=opt, train_mb_size=16, evaluator=None)
    strategy.train(bm.train_stream[0])
    return opt.param_groups[0]["foreach"], {k: v.clone() for k, v in net.state_dict().items()}


def test_given_optimizer_runs_foreach_with_the_same_update():
    chosen, state = _trained_with_given_adam(None)  # left unset: the strategy picks foreach
    kept, state_loop = _trained_with_given_adam(False)  # explicit: left alone
    assert chosen is True and kept is False
    assert state.keys() == state_loop.keys()
    for k in state:
        torch.testing.assert_close(state[k], state_loop[k], rtol=1e-5, atol=1e-6)
    assert not torch.equal(state["main.1.weight"], _initial_mlp_weight())


def _initial_mlp_weight() -> torch.Tensor:
    from avalanche_neumod.models import MLP

    torch.manual_seed(0)
    return MLP(input_size=20, hidden_sizes=(9, 7), num_classes=3)[1].weight.detach().clone()
