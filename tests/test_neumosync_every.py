"""``neurosync_every=k``: the alphas are held over windows of k iterations and NeuroSync is
trained on the window's accumulated alpha-gradient, exactly the gradient of the window's
summed loss with the alphas held fixed; k = 1 is the default objective."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from avalanche_neumod.benchmarks.tensor_data import ExperienceTensors, tensor_benchmark
from avalanche_neumod.models import MLP
from avalanche_neumod.models.neumosync import NeuMoSyncNetwork
from avalanche_neumod.training.neumosync import NeuMoSync

pytestmark = pytest.mark.usefixtures("one_thread")

BATCH = 8


def _stream(iterations: int):
    g = torch.Generator().manual_seed(1)
    n = iterations * BATCH
    x, y = torch.randn(n, 12, generator=g), torch.randint(0, 3, (n,), generator=g)
    return tensor_benchmark([ExperienceTensors(x, y, 0)], [ExperienceTensors(x, y, 0)])


def _strategy(every: int) -> NeuMoSync:
    torch.manual_seed(0)
    net = NeuMoSyncNetwork(MLP(input_size=12, hidden_sizes=(7, 5), num_classes=3))
    with torch.no_grad():
        net.neurosync.head.weight.normal_(0, 0.5)  # alphas away from neutral
    return NeuMoSync(model=net, train_mb_size=BATCH, evaluator=None, neurosync_every=every)


def _modulator(net: NeuMoSyncNetwork) -> dict[str, torch.nn.Parameter]:
    theta = {id(p) for p in net.main.parameters()}
    return {k: p for k, p in net.named_parameters() if id(p) not in theta}


def test_window_gradient_is_the_summed_losses_gradient_at_the_held_alphas():
    """Windows of 3 over 7 iterations (3, 3, then 1 closed at the experience's end): at each
    window's last step NeuroSync's gradient equals ``(sum_j dL_j/d alpha) . d alpha/d psi``,
    computed directly from a copy of the network at the window's start and each iteration's
    theta_j, phi_j and minibatch; in between NeuroSync has no gradient and its parameters stay."""
    strategy = _strategy(3)
    net = strategy.model
    snaps, steps = [], []  # per iteration: (copy of the net before the forward, x, y)
    forward = strategy.forward

    def spy_forward():
        snaps.append((copy.deepcopy(net), strategy.mb_x.clone(), strategy.mb_y.clone()))
        return forward()

    step = strategy.optimizer.step

    def spy_step(*args, **kwargs):
        steps.append(
            {k: None if p.grad is None else p.grad.clone() for k, p in _modulator(net).items()}
        )
        return step(*args, **kwargs)

    strategy.forward = spy_forward
    strategy.optimizer.step = spy_step
    strategy.train(_stream(7).train_stream[0])
    assert len(snaps) == 7 and len(steps) == 8  # 7 iterations + the closing step

    for start, end, step_index in ((0, 3, 2), (3, 6, 5), (6, 7, 7)):
        ref = snaps[start][0]
        params = _modulator(ref)
        alphas = ref.alphas(snaps[start][1])  # chain-ruled through NeuroSync once
        held = alphas.detach().requires_grad_()
        total = torch.zeros_like(held)
        for j in range(start, end):
            net_j, x, y = snaps[j]  # theta_j and phi_j, at the held alphas
            loss = F.cross_entropy(net_j.inference_forward(x, held), y)
            total += torch.autograd.grad(loss, held)[0]
        expected = dict(zip(params, torch.autograd.grad(alphas, list(params.values()), total)))
        got = steps[step_index]
        for k, g in expected.items():
            torch.testing.assert_close(got[k], g, rtol=1e-5, atol=1e-7)
        assert any(g.abs().sum() > 0 for g in expected.values())
        for j in range(start, step_index):  # no NeuroSync step inside the window
            assert all(v is None for v in steps[j].values())


def test_alphas_are_held_over_the_window():
    strategy = _strategy(4)
    seen = []
    record = strategy._record_alphas

    def spy(net):
        seen.append(net.last_alphas.clone())
        record(net)

    strategy._record_alphas = spy
    strategy.train(_stream(8).train_stream[0])
    assert len(seen) == 8
    for w in (0, 4):
        for j in range(w + 1, w + 4):
            assert torch.equal(seen[j], seen[w])
    assert not torch.equal(seen[0], seen[4])  # the second window has its own alphas


def test_every_one_is_the_default_bit_for_bit():
    runs = []
    for kwargs in ({}, {"neurosync_every": 1}):
        torch.manual_seed(0)
        net = NeuMoSyncNetwork(MLP(input_size=12, hidden_sizes=(7, 5), num_classes=3))
        s = NeuMoSync(model=net, train_mb_size=BATCH, evaluator=None, **kwargs)
        torch.manual_seed(2)
        s.train(_stream(5).train_stream[0])
        runs.append(net.state_dict())
    for k in runs[0]:
        assert torch.equal(runs[0][k], runs[1][k]), k


@pytest.mark.parametrize(
    "kwargs",
    [
        {"neurosync_every": 0},
        {"neurosync_every": 2.0},
        {"neurosync_every": 2, "objective": "lookahead"},
        {"neurosync_every": 2, "context": "sample"},
    ],
)
def test_bad_neurosync_every_raises(kwargs):
    with pytest.raises(ValueError):
        NeuMoSync(model=MLP(input_size=12, hidden_sizes=(7, 5), num_classes=3), **kwargs)


def test_history_over_windows_counts_every_iteration():
    """The per-experience alpha summary and saturation count each iteration of a window
    (its alphas recorded once, weighted by the window's length)."""
    strategy = _strategy(4)
    seen = []
    record = strategy._record_alphas

    def spy(net):
        seen.append(net.last_alphas.double().clone())
        record(net)

    strategy._record_alphas = spy
    strategy.alpha_record_every = 1
    strategy.train(_stream(6).train_stream[0])
    a = torch.stack(seen)  # (6, N, 4): windows of 4 and 2
    net = strategy.model
    summary = strategy.alpha_history["experiences"][0]["layers"]
    for layer in net.layers:
        part = a[:, layer.offset : layer.offset + layer.n].reshape(-1, 4)
        for j, kind in enumerate(("sm", "wc", "gain", "shift")):
            mean, std = summary[layer.name][kind]
            assert mean == pytest.approx(part[:, j].mean().item(), abs=1e-9)
            assert std == pytest.approx(part[:, j].std(unbiased=False).item(), abs=1e-6)
    assert strategy.alpha_history["experiences"][0]["iterations"] == 6
    assert len(strategy.alpha_history["iterations"]) == 6
