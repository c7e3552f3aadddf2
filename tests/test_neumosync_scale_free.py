"""The scale-free reconstructions of NeuMoSync (options (5a), (6b), (7c) of
``models/neumosync/mechanism.py``): each equation holds, and each is off by default."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from avalanche_neumod.benchmarks.tensor_data import ExperienceTensors, tensor_benchmark
from avalanche_neumod.models import MLP
from avalanche_neumod.models.neumosync import NeuMoSyncNetwork
from avalanche_neumod.training.neumosync import NeuMoSync

pytestmark = pytest.mark.usefixtures("one_thread")


def _net(**kwargs) -> NeuMoSyncNetwork:
    torch.manual_seed(0)
    net = NeuMoSyncNetwork(MLP(input_size=12, hidden_sizes=(7, 5), num_classes=3), **kwargs)
    with torch.no_grad():  # alphas away from neutral, phi away from theta
        net.neurosync.head.weight.normal_(0, 1.0)
        net.neurosync.head.bias.normal_(0, 1.0)
        for layer in net.layers:
            for t in net.phi(layer.index):
                t.add_(0.3 * torch.randn_like(t))
    return net


def _by_layer(net: NeuMoSyncNetwork, a: torch.Tensor):
    for layer in net.layers:
        yield layer, a[..., layer.offset : layer.offset + layer.n, :]


def _written_out(net: NeuMoSyncNetwork, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """(5) and (6) on a ReLU MLP with coefficients ``c`` (N, 4) = (c_theta, c_phi, gain, shift)."""
    h = x
    for layer, a in _by_layer(net, c):
        pw, pb = net.phi(layer.index)
        w = a[:, 0, None] * layer.module.weight + a[:, 1, None] * pw
        b = a[:, 0] * layer.module.bias + a[:, 1] * pb
        z = F.linear(h, w, b)
        h = torch.relu(a[:, 2] * z + a[:, 3]) if layer.modulated else z
    return h


def test_options_are_off_by_default():
    net = NeuMoSyncNetwork(MLP(input_size=12, hidden_sizes=(7, 5), num_classes=3))
    assert not (net.affine_mixing or net.normalised_gains or net.gradient_plasticity)


@pytest.mark.parametrize("batch", [5, 40])  # output mixing and materialised weights
def test_affine_mixing_is_theta_plus_beta_theta_minus_phi(batch):
    """(5a): alpha_SM + alpha_WC = 1 per neuron, w_inf = theta + beta (theta - phi) with
    beta = -alpha_WC; both signs of beta occur; phi = theta gives the MainNetwork."""
    net = _net(affine_mixing=True)
    x = torch.randn(batch, 12)
    a = net.alphas(x)
    torch.testing.assert_close(a[:, 0] + a[:, 1], torch.ones(net.n_neurons), rtol=0, atol=1e-6)
    beta = -a[:, 1]
    assert (beta > 0).any() and (beta < 0).any()
    assert (beta.abs() <= net.alpha_scales[1]).all()
    weights = net.inference_weights(a)
    for layer, part in _by_layer(net, a):
        pw, _ = net.phi(layer.index)
        theta = layer.module.weight
        expected = theta + (-part[:, 1, None]) * (theta - pw)
        torch.testing.assert_close(weights[f"{layer.name}.weight"], expected)
    torch.testing.assert_close(net.inference_forward(x, a), _written_out(net, x, a))
    with torch.no_grad():  # phi = theta: the InferenceNetwork is theta (no rescaling)
        for layer in net.layers:
            pw, pb = net.phi(layer.index)
            pw.copy_(layer.module.weight)
            pb.copy_(layer.module.bias)
    net_a = net.alphas(x).detach()
    plain = net_a.clone()
    plain[:, :2] = torch.tensor([1.0, 0.0])
    torch.testing.assert_close(net.inference_forward(x, net_a), net.inference_forward(x, plain))


@pytest.mark.parametrize("context", ["batch", "sample"])
def test_normalised_gains_have_mean_log_gain_and_mean_shift_zero_per_layer(context):
    """(6b): within each modulated layer, mean log alpha_gain = 0 and mean alpha_shift = 0;
    the output layer keeps gain 1 and shift 0; the forward pass uses them as (6)."""
    net = _net(normalised_gains=True, context=context)
    x = torch.randn(4, 12)
    a = net.alphas(x)
    for layer, part in _by_layer(net, a):
        log_gain, shift = part[..., 2].log(), part[..., 3]
        if layer.modulated:
            zero = torch.zeros(log_gain.shape[:-1])
            torch.testing.assert_close(log_gain.mean(-1), zero, rtol=0, atol=1e-6)
            torch.testing.assert_close(shift.mean(-1), zero, rtol=0, atol=1e-7)
            assert log_gain.std() > 1e-3 and shift.std() > 1e-4  # per-neuron modulation left
        else:
            assert torch.all(part[..., 2] == 1) and torch.all(part[..., 3] == 0)
    if context == "batch":
        torch.testing.assert_close(net.inference_forward(x, a), _written_out(net, x, a))


def test_gradient_plasticity_leaves_the_forward_pass_and_scales_thetas_gradient():
    """(7c): the InferenceNetwork does not depend on alpha_SM (w_inf = theta + alpha_WC phi);
    after ``modulate_gradients`` theta_i's gradient is alpha_SM,i times the unmodulated one."""
    net = _net(gradient_plasticity=True)
    x, y = torch.randn(6, 12), torch.randint(0, 3, (6,))
    a = net.alphas(x).detach()
    assert not torch.allclose(a[:, 0], torch.ones(net.n_neurons))
    other = a.clone()
    other[:, 0] = 2.0
    out = net.inference_forward(x, a)
    assert torch.equal(out, net.inference_forward(x, other))
    plain = a.clone()
    plain[:, 0] = 1.0
    torch.testing.assert_close(out, _written_out(net, x, plain))
    F.cross_entropy(out, y).backward()
    raw = {k: t.grad.clone() for k, t in net.neuron_parameters().items()}
    net.modulate_gradients(a)
    for layer, part in _by_layer(net, a):
        p = part[:, 0]
        torch.testing.assert_close(
            layer.module.weight.grad, p[:, None] * raw[f"{layer.name}.weight"]
        )
        torch.testing.assert_close(layer.module.bias.grad, p * raw[f"{layer.name}.bias"])


def _tiny(n=32):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(n, 12, generator=g), torch.randint(0, 3, (n,), generator=g)
    return tensor_benchmark([ExperienceTensors(x, y, 0)], [ExperienceTensors(x, y, 0)])


def test_gradient_plasticity_is_trained_by_the_lookahead_and_refused_with_the_joint_loss():
    """The joint loss gives alpha_SM no gradient under (7c) (refused); the lookahead's inner
    step ``theta' = theta - eta p c g`` does, and the strategy scales theta's gradient by p."""
    net = _net(gradient_plasticity=True, affine_mixing=True)
    with pytest.raises(ValueError, match="lookahead"):
        NeuMoSync(model=net, train_mb_size=8, evaluator=None)
    x, y = torch.randn(8, 12), torch.randint(0, 3, (8,))
    a = net.alphas(x)
    F.cross_entropy(net.inference_forward(x, a), y).backward()
    assert net.neurosync.head.weight.grad[0].abs().sum() == 0  # the SM row: no gradient
    net.zero_grad()
    strategy = NeuMoSync(model=net, objective="lookahead", train_mb_size=8, evaluator=None)
    seen = {}
    modulate = net.modulate_gradients

    def spy_modulate(alphas):
        seen["raw"] = net.main[-1].weight.grad.clone()
        seen["alphas"] = alphas.clone()
        modulate(alphas)

    def spy_step(step=strategy.optimizer_step):
        seen["head"] = net.neurosync.head.weight.grad.clone()
        seen["theta"] = net.main[-1].weight.grad.clone()
        step()

    net.modulate_gradients = spy_modulate
    strategy.optimizer_step = spy_step
    strategy.train(_tiny(8).train_stream[0])
    assert seen["head"][0].abs().sum() > 0  # alpha_SM learns through the inner step
    out = net.layers[-1]
    p = seen["alphas"][out.offset :, 0]
    assert not torch.allclose(p, torch.ones_like(p))
    torch.testing.assert_close(seen["theta"], p[:, None] * seen["raw"])  # (7c) in the step


@pytest.mark.parametrize(
    "kwargs",
    [
        {"affine_mixing": True, "consolidation": False},
        {"affine_mixing": True, "plasticity_modulation": False},
        {"normalised_gains": True, "activity_modulation": False},
        {"gradient_plasticity": True, "plasticity_modulation": False},
        {"gradient_plasticity": True, "context": "sample"},
        {"affine_mixing": "yes"},
        {"normalised_gains": 1},
        {"gradient_plasticity": None},
    ],
)
def test_bad_option_combinations_raise(kwargs):
    with pytest.raises(ValueError):
        NeuMoSyncNetwork(MLP(input_size=12, hidden_sizes=(7, 5), num_classes=3), **kwargs)


@pytest.mark.parametrize("option", ["affine_mixing", "normalised_gains", "gradient_plasticity"])
def test_each_option_starts_at_the_main_network_and_trains(option):
    """r = 0 at initialisation: the InferenceNetwork is the MainNetwork; then it trains."""
    torch.manual_seed(0)
    model = MLP(input_size=12, hidden_sizes=(7, 5), num_classes=3)
    extra = {"objective": "lookahead"} if option == "gradient_plasticity" else {}
    strategy = NeuMoSync(model=model, train_mb_size=8, evaluator=None, **{option: True}, **extra)
    x = torch.randn(8, 12)
    strategy.model.eval()
    torch.testing.assert_close(strategy.model(x), model(x))
    before = model[-1].weight.detach().clone()
    strategy.train(_tiny().train_stream[0])
    assert not torch.equal(before, model[-1].weight)
