"""Each speed path of ``models/neumosync/fast.py`` equals the plain equation it computes
(values and gradients). The encoder (``encoder_layer``, ``TransposedAttention``) is
checked against ``nn.TransformerEncoder`` in ``tests/test_neurosync_encoder.py``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from avalanche_neumod.models.neumosync import fast

pytestmark = pytest.mark.usefixtures("one_thread")


def _grads(fn, inputs: list[torch.Tensor], weights: torch.Tensor):
    out = fn(*inputs)
    return out, torch.autograd.grad(
        (out * weights).sum(), inputs, allow_unused=True, materialize_grads=True
    )


@pytest.mark.parametrize("conv", [False, True])
@pytest.mark.parametrize("modulate", [False, True])
@pytest.mark.parametrize("consolidation", [False, True])
def test_mix_outputs_is_the_layer_at_the_mixed_weights(conv, modulate, consolidation):
    """(5) by linearity, with (6) fused: ``c_theta (theta . h) + c_phi (phi . h)`` (times the
    gain, plus the shift) equals the layer at ``w = c_theta theta + c_phi phi``, then
    ``gain z + shift``."""
    g = torch.Generator().manual_seed(0)
    n = 5
    if conv:
        shape_w, h = (n, 3, 3, 3), torch.randn(4, 3, 6, 6, generator=g, dtype=torch.double)
    else:
        shape_w, h = (n, 7), torch.randn(4, 7, generator=g, dtype=torch.double)
    theta, phi = (torch.randn(shape_w, generator=g, dtype=torch.double) for _ in range(2))
    tb, pb = (torch.randn(n, generator=g, dtype=torch.double) for _ in range(2))
    c_theta, c_phi, gain, shift = (
        torch.randn(n, generator=g, dtype=torch.double) for _ in range(4)
    )
    leaves = [t.requires_grad_() for t in (h, theta, tb, c_theta, c_phi, gain, shift)]

    def layer(x, w, b):
        return F.conv2d(x, w, b) if conv else F.linear(x, w, b)

    def view(a):
        return a.view(1, -1, 1, 1) if conv else a

    def plain(h, theta, tb, c_theta, c_phi, gain, shift):
        w = view_w(c_theta) * theta + (view_w(c_phi) * phi if consolidation else 0)
        b = c_theta * tb + (c_phi * pb if consolidation else 0)
        z = layer(h, w, b)
        return view(gain) * z + view(shift) if modulate else z

    def view_w(a):
        return a.view(-1, *([1] * (len(shape_w) - 1)))

    def fused(h, theta, tb, c_theta, c_phi, gain, shift):
        out_phi = layer(h, phi, pb) if consolidation else None
        args = (gain, shift) if modulate else ()
        return fast.mix_outputs(layer(h, theta, tb), out_phi, c_theta, c_phi, conv, *args)

    weights = torch.randn(plain(*leaves).shape, generator=g, dtype=torch.double)
    ref, ref_g = _grads(plain, leaves, weights)
    got, got_g = _grads(fused, leaves, weights)
    torch.testing.assert_close(got, ref)
    for a, b in zip(got_g, ref_g):
        torch.testing.assert_close(a, b)
    used = [True] * 4 + [consolidation] + [modulate] * 2
    for grad, reached in zip(got_g, used):  # the gradient reaches every input that is used
        assert bool(grad.abs().sum() > 0) == reached


def test_ema_is_the_convex_combination():
    """(2) phi <- lambda phi + (1 - lambda) theta, for every tensor at once."""
    g = torch.Generator().manual_seed(1)
    phis = [torch.randn(4, 3, generator=g), torch.randn(4, generator=g)]
    thetas = [torch.randn(4, 3, generator=g), torch.randn(4, generator=g)]
    expected = [0.9 * p.double() + 0.1 * t.double() for p, t in zip(phis, thetas)]
    fast.ema_(phis, thetas, 0.9)
    for p, e in zip(phis, expected):
        torch.testing.assert_close(p.double(), e, rtol=1e-6, atol=1e-7)


def test_mean_std_is_the_population_mean_and_std():
    x = torch.randn(50, 30, generator=torch.Generator().manual_seed(2)) * 3 + 1
    mean, std = fast.mean_std(x)
    ref_std, ref_mean = torch.std_mean(x, dim=0, unbiased=False)
    torch.testing.assert_close(mean, ref_mean)
    torch.testing.assert_close(std, ref_std)


def test_prefer_foreach_sets_only_an_unset_option():
    p = [torch.nn.Parameter(torch.zeros(2))]
    unset, loop = torch.optim.Adam(p), torch.optim.Adam(p, foreach=False)
    fused, sgd = torch.optim.Adam(p, fused=True), torch.optim.SGD(p, lr=0.1)
    for opt in (unset, loop, fused, sgd):
        fast.prefer_foreach(opt)
    assert unset.param_groups[0]["foreach"] is True and unset.defaults["foreach"] is True
    assert loop.param_groups[0]["foreach"] is False
    assert not fused.param_groups[0].get("foreach")
    assert sgd.param_groups[0]["foreach"] is True  # SGD has the option, left unset
    # the update is the loop's: tests/test_neumosync_equivalence.py trains with both


@pytest.mark.parametrize("consolidation", [False, True])
def test_fold_modulation_is_the_modulated_layer(consolidation):
    """(5) and (6) folded into a conv's weights: the conv at the folded (w, b) equals
    ``gain (conv at w_inf) + shift``, values and gradients."""
    g = torch.Generator().manual_seed(3)
    n = 4
    h = torch.randn(2, 3, 6, 6, generator=g, dtype=torch.double)
    theta, phi = (torch.randn(n, 3, 3, 3, generator=g, dtype=torch.double) for _ in range(2))
    tb, pb = (torch.randn(n, generator=g, dtype=torch.double) for _ in range(2))
    coef = [torch.randn(n, generator=g, dtype=torch.double) for _ in range(4)]
    leaves = [t.requires_grad_() for t in (h, theta, tb, *coef)]
    pw, pbb = (phi, pb) if consolidation else (None, None)

    def plain(h, theta, tb, c_theta, c_phi, gain, shift):
        w, b = c_theta.view(-1, 1, 1, 1) * theta, c_theta * tb
        if consolidation:
            w, b = w + c_phi.view(-1, 1, 1, 1) * phi, b + c_phi * pb
        return gain.view(1, -1, 1, 1) * F.conv2d(h, w, b) + shift.view(1, -1, 1, 1)

    def folded(h, theta, tb, c_theta, c_phi, gain, shift):
        w, b = fast.fold_modulation(theta, tb, pw, pbb, c_theta, c_phi, gain, shift)
        return F.conv2d(h, w, b)

    weights = torch.randn(2, n, 4, 4, generator=g, dtype=torch.double)
    ref, ref_g = _grads(plain, leaves, weights)
    got, got_g = _grads(folded, leaves, weights)
    torch.testing.assert_close(got, ref)
    for a, b in zip(got_g, ref_g):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("shape", [(6, 1, 5, 9), (4, 3, 5, 2), (3, 1, 7, 1)])
def test_neuron_statistics_are_the_statistics_of_the_rows(shape):
    """(1) in place: ``neuron_statistics`` of ``(B, w, n, P)`` activity equals
    ``activity_statistics`` of its ``(samples, n)`` rows (float32, rtol 1e-5, atol 1e-6:
    only the summation order differs), including a dead neuron (ReDo score 0)."""
    from avalanche_neumod.models.neumosync.mechanism import activity_statistics

    g = torch.Generator().manual_seed(1)
    a = torch.relu(torch.randn(shape, generator=g))
    a[:, :, 0] = 0.0  # a dead neuron
    rows = a.transpose(2, 3).reshape(-1, shape[2])
    got = fast.neuron_statistics(a)
    assert got.shape == (shape[2], 5)
    torch.testing.assert_close(got, activity_statistics(rows), rtol=1e-5, atol=1e-6)
    # the std is the population std, not the sample std
    torch.testing.assert_close(got[:, 2], rows.std(0, unbiased=False), rtol=1e-5, atol=1e-6)


def test_conv_capture_keeps_the_activity_unshaped_and_its_statistics_match():
    """The conv layers' captured activity (kept 4-d for ``neuron_statistics``) gives the
    statistics of the transposed rows the capture used to store (rtol 1e-5, atol 1e-6)."""
    from avalanche_neumod.models import ConvNet
    from avalanche_neumod.models.neumosync import NeuMoSyncNetwork
    from avalanche_neumod.models.neumosync.mechanism import activity_statistics

    torch.manual_seed(0)
    net = NeuMoSyncNetwork(ConvNet(in_channels=3, num_classes=10, input_size=16)).train()
    net(torch.randn(4, 3, 16, 16))
    captured = list(net._captured)
    assert any(c.dim() == 4 for c in captured) and all(c is not None for c in captured)
    expected = torch.cat(
        [
            activity_statistics(c.transpose(2, 3).reshape(-1, c.shape[2]) if c.dim() == 4 else c)
            for c in captured
        ]
    )
    torch.testing.assert_close(
        net.features.batch_statistics(captured), expected, rtol=1e-5, atol=1e-6
    )
    assert net.update_statistics()
    torch.testing.assert_close(net.features.activity, expected, rtol=1e-5, atol=1e-6)


def test_weight_statistics_are_the_norms_of_theta_phi_and_their_difference():
    """(1)'s w_i: ``||theta_i||``, ``||phi_i||``, ``||theta_i - phi_i||`` over each neuron's
    weights and bias, exactly as the plain per-row formula computes them."""
    from avalanche_neumod.models import MLP
    from avalanche_neumod.models.neumosync import NeuMoSyncNetwork

    torch.manual_seed(0)
    net = NeuMoSyncNetwork(MLP(input_size=12, hidden_sizes=(5, 4), num_classes=3))
    with torch.no_grad():
        for layer in net.layers:
            pw, pb = net.phi(layer.index)
            pw.add_(torch.randn_like(pw))
            pb.add_(torch.randn_like(pb))
    rows = []
    for layer in net.layers:
        w, b = layer.module.weight.detach(), layer.module.bias.detach()
        pw, pb = net.phi(layer.index)
        t, p = torch.cat((w, b[:, None]), 1), torch.cat((pw, pb[:, None]), 1)
        rows.append(torch.stack((t.norm(dim=1), p.norm(dim=1), (t - p).norm(dim=1)), 1))
    torch.testing.assert_close(net.weight_statistics(), torch.cat(rows))
    assert (net.weight_statistics()[:, 2] > 0).all()


@pytest.mark.parametrize("training", [True, False])
def test_fold_norm_modulation_is_the_modulated_norm(training):
    """(6) folded into a BatchNorm: the norm at ``(gain gamma, gain beta + shift)`` equals
    ``gain BN(z) + shift``, in training (batch statistics) and evaluation (running
    statistics) mode; values and gradients (float64, tolerance 1e-10)."""
    g = torch.Generator().manual_seed(3)
    n = 4
    z = torch.randn(5, n, 3, 3, generator=g, dtype=torch.double, requires_grad=True)
    gamma, beta, gain, shift = (
        torch.randn(n, generator=g, dtype=torch.double).requires_grad_() for _ in range(4)
    )
    mean, var = torch.randn(n, dtype=torch.double), torch.rand(n, dtype=torch.double) + 0.5
    w = torch.randn(5, n, 3, 3, generator=g, dtype=torch.double)

    def bn(x, weight, bias):
        return F.batch_norm(x, mean.clone(), var.clone(), weight, bias, training, 0.1, 1e-5)

    def plain(z, gamma, beta, gain, shift):
        return gain[:, None, None] * bn(z, gamma, beta) + shift[:, None, None]

    def folded(z, gamma, beta, gain, shift):
        return bn(z, *fast.fold_norm_modulation(gamma, beta, gain, shift))

    inputs = [z, gamma, beta, gain, shift]
    want, want_g = _grads(plain, inputs, w)
    got, got_g = _grads(folded, inputs, w)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    for a, b in zip(got_g, want_g):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    assert got_g[3].abs().sum() > 0  # the gain does receive a gradient


def test_resnet_inference_folds_the_norm_modulation_and_matches_the_hook():
    """SlimResNet18: the batch-alpha InferenceNetwork folds (6) into its BatchNorms and
    gives the output, alpha-gradient and theta-gradient of the hooked modulation
    (float64, rtol 1e-9, atol 1e-10), and the running statistics alike."""
    import copy

    from avalanche_neumod.models import SlimResNet18
    from avalanche_neumod.models.neumosync import NeuMoSyncNetwork

    torch.manual_seed(0)
    net = NeuMoSyncNetwork(SlimResNet18(num_classes=10)).double().train()
    assert net._norm_foldable  # the ResNet's convs are modulated after a BatchNorm
    ref = copy.deepcopy(net)
    x = torch.randn(3, 3, 8, 8, dtype=torch.double)
    g = torch.Generator().manual_seed(1)
    alphas = net.alpha_offset.double() + 0.3 * torch.randn(net.n_neurons, 4, generator=g).double()
    results = []
    for m, hooked in ((net, False), (ref, True)):
        a = alphas.clone().requires_grad_()
        if hooked:  # ready weights: the modulation stays in the hooks
            out = m.inference_forward(x, a, m.inference_weights(a))
        else:
            out = m.inference_forward(x, a)
        loss = (out * torch.arange(10, dtype=torch.double)).sum()
        ga, gt = torch.autograd.grad(loss, [a, m.main.conv1.weight])
        results.append((out, ga, gt))
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(net.main.bn1.running_mean, ref.main.bn1.running_mean)
    assert results[0][1][:, 2].abs().sum() > 0  # the gains are trained through the fold


@pytest.mark.parametrize("rows", [7, 32, 100])
def test_blocked_attention_is_the_transposed_attention(rows):
    """The attention by query blocks equals the whole-matrix one (values and the gradients
    of q, k, v; float64, tolerance 1e-10), for blocks that do and do not divide T, and is
    twice differentiable like it (gradgradcheck)."""
    g = torch.Generator().manual_seed(4)
    qt, kt, vt = (
        torch.randn(6, 4, 50, generator=g, dtype=torch.double, requires_grad=True) for _ in range(3)
    )
    w = torch.randn(6, 4, 50, generator=g, dtype=torch.double)
    inputs = [qt, kt, vt]
    want, want_g = _grads(lambda *a: fast.TransposedAttention.apply(*a, 0.5), inputs, w)
    got, got_g = _grads(lambda *a: fast.BlockedTransposedAttention.apply(*a, 0.5, rows), inputs, w)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    for a, b in zip(got_g, want_g):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    small = [x[:2, :, :9].detach().clone().requires_grad_() for x in inputs]
    assert torch.autograd.gradgradcheck(
        lambda *a: fast.BlockedTransposedAttention.apply(*a, 0.5, 4), small
    )


def test_encoder_runs_blocked_attention_above_the_threshold(monkeypatch):
    """Above ``BLOCKED_ATTENTION_MIN_TOKENS`` the encoder layer takes the blocked path and
    gives ``nn.TransformerEncoderLayer``'s output and input gradient (float64, 1e-9)."""
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True).double()
    x = torch.randn(1, 40, 8, dtype=torch.double, requires_grad=True)
    calls = []
    real = fast.BlockedTransposedAttention.apply
    monkeypatch.setattr(fast, "BLOCKED_ATTENTION_MIN_TOKENS", 30)
    monkeypatch.setattr(fast, "ATTENTION_BLOCK_ROWS", 16)
    monkeypatch.setattr(
        fast.BlockedTransposedAttention, "apply", lambda *a: calls.append(1) or real(*a)
    )
    got = fast.encoder_layer(layer, x)
    (gx,) = torch.autograd.grad(got.sum(), x)
    want = layer(x)
    (wx,) = torch.autograd.grad(want.sum(), x)
    assert calls
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(gx, wx, rtol=1e-9, atol=1e-9)
