"""NeuMoSync network: InferenceNetwork, consolidation, alphas, ablations."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from avalanche_neumod.models import MLP, ConvNet, SlimResNet18
from avalanche_neumod.models.neumosync import LinearModulator, NeuMoSyncNetwork, NeuroSync

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: one intra-op thread


def _randomise_head(net: NeuMoSyncNetwork, std: float = 0.5) -> None:
    with torch.no_grad():
        net.neurosync.head.weight.normal_(0, std)
        net.neurosync.head.bias.normal_(0, std)


def _small_mlp() -> MLP:
    return MLP(input_size=12, hidden_sizes=(7, 5), num_classes=3)


MODELS = {
    "mlp": (lambda: MLP(), (6, 1, 28, 28)),
    "convnet": (
        lambda: ConvNet(in_channels=1, input_size=28, channels=4, hidden=12),
        (6, 1, 28, 28),
    ),
    "resnet": (lambda: SlimResNet18(num_classes=5, nf=4), (4, 3, 16, 16)),
    "sequential": (
        lambda: nn.Sequential(
            nn.Conv2d(1, 3, 3),
            nn.Tanh(),
            nn.Flatten(),
            nn.Linear(3 * 6 * 6, 9),
            nn.ReLU(),
            nn.Linear(9, 4),
        ),
        (5, 1, 8, 8),
    ),
}


@pytest.mark.parametrize("context", ["batch", "sample"])
@pytest.mark.parametrize("name", list(MODELS))
def test_initial_inference_network_equals_main_network(name, context):
    make, shape = MODELS[name]
    model = make()
    net = NeuMoSyncNetwork(model, context=context)
    x = torch.randn(shape)
    net.eval()  # BN uses running statistics: both passes see the same normalisation
    expected = net.main(x)
    out = net(x)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    a = net.last_alphas.reshape(-1, net.n_neurons, 4)
    assert torch.equal(a, torch.tensor([1.0, 0.0, 1.0, 0.0]).expand_as(a))
    # the check is not vacuous: a non-zero head changes the output
    _randomise_head(net)
    assert not torch.allclose(net(x), expected, atol=1e-4)


def _manual_mlp(net: NeuMoSyncNetwork, x: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """The InferenceNetwork of a ReLU MLP written out: w_inf = SM theta + WC phi,
    h = relu(gain z + shift); output: weight mixing only."""
    h = x.flatten(1)
    for layer in net.layers:
        a = alphas[..., layer.offset : layer.offset + layer.n, :]
        pw, pb = net.phi(layer.index)
        theta_w, theta_b = layer.module.weight, layer.module.bias
        if a.dim() == 2:
            w = a[:, 0, None] * theta_w + a[:, 1, None] * pw
            b = a[:, 0] * theta_b + a[:, 1] * pb
            z = h @ w.T + b
        else:  # per sample
            w = a[:, :, 0, None] * theta_w + a[:, :, 1, None] * pw  # (B, n, k)
            b = a[:, :, 0] * theta_b + a[:, :, 1] * pb
            z = torch.einsum("bk,bnk->bn", h, w) + b
        if layer.modulated:
            h = torch.relu(a[..., 2] * z + a[..., 3])
        else:
            h = z
    return h


@pytest.mark.parametrize("context", ["batch", "sample"])
def test_inference_network_matches_equations(context):
    net = NeuMoSyncNetwork(_small_mlp(), context=context)
    _randomise_head(net)
    with torch.no_grad():  # make phi differ from theta
        for layer in net.layers:
            pw, pb = net.phi(layer.index)
            pw.add_(0.3 * torch.randn_like(pw))
            pb.add_(0.3 * torch.randn_like(pb))
    x = torch.randn(5, 12)
    out = net(x)
    alphas = net.last_alphas
    assert alphas.shape == ((net.n_neurons, 4) if context == "batch" else (5, net.n_neurons, 4))
    torch.testing.assert_close(out, _manual_mlp(net, x, alphas))
    # output neurons get the weight mixing only
    out_layer = net.layers[-1]
    tail = alphas[..., out_layer.offset :, :]
    assert torch.all(tail[..., 2] == 1) and torch.all(tail[..., 3] == 0)
    assert not torch.all(alphas[..., 1] == 0)


def test_sample_context_equals_batch_context_on_identical_samples():
    torch.manual_seed(1)
    batch = NeuMoSyncNetwork(_small_mlp(), context="batch")
    _randomise_head(batch)
    sample = NeuMoSyncNetwork(copy.deepcopy(batch.main), context="sample")
    sample.load_state_dict(batch.state_dict())
    x = torch.randn(1, 12).expand(4, 12)
    torch.testing.assert_close(sample(x), batch(x))
    y = torch.randn(4, 12)  # different samples: different alphas per sample
    a = sample.alphas(y)
    assert not torch.allclose(a[0], a[1])


def test_ema_update_is_exact():
    net = NeuMoSyncNetwork(_small_mlp(), ema_decay=0.9)
    with torch.no_grad():
        for p in net.main.parameters():
            p.add_(torch.randn_like(p))
    before = [t.clone() for layer in net.layers for t in net.phi(layer.index)]
    thetas = [
        t.detach().clone() for layer in net.layers for t in (layer.module.weight, layer.module.bias)
    ]
    net.consolidate()
    after = [t for layer in net.layers for t in net.phi(layer.index)]
    for phi0, theta, phi1 in zip(before, thetas, after):
        # phi <- l phi + (1 - l) theta (computed as a lerp: equal up to float rounding)
        ref = 0.9 * phi0.double() + 0.1 * theta.double()
        torch.testing.assert_close(phi1.double(), ref, rtol=1e-6, atol=1e-7)
        assert not torch.equal(phi1, phi0)


def test_gradients_reach_theta_features_and_neurosync_but_not_phi():
    torch.manual_seed(0)
    net = NeuMoSyncNetwork(MLP(input_size=20, hidden_sizes=(8, 8), num_classes=4))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, y = torch.randn(16, 20), torch.randint(0, 4, (16,))
    for _ in range(3):  # after a step the zero-initialised head lets gradient into the body
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    opt.zero_grad()
    F.cross_entropy(net(x), y).backward()
    param_ids = {id(p) for p in net.parameters()}
    for layer in net.layers:
        for phi in net.phi(layer.index):
            assert id(phi) not in param_ids and not phi.requires_grad and phi.grad is None
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert any(name.startswith("neurosync.encoder") for name, _ in net.named_parameters())
    assert net.features.embedding.grad.abs().sum() > 0


def test_plasticity_modulation_scales_the_gradient():
    """dL/dtheta_i = alpha_SM,i dL/dw_inf,i (InferenceNetwork)."""
    torch.manual_seed(0)
    net = NeuMoSyncNetwork(_small_mlp())
    _randomise_head(net, std=1.0)
    x, y = torch.randn(9, 12), torch.randint(0, 3, (9,))
    alphas = net.alphas(x).detach()
    # gradient with respect to the InferenceNetwork's weights, as leaves
    w_inf = {k: v.detach().requires_grad_() for k, v in net.inference_weights(alphas).items()}
    with net._modulating(alphas, sample=False):
        out = torch.func.functional_call(net.main, w_inf, (x,))
    F.cross_entropy(out, y).backward()
    # gradient with respect to theta through the full network
    net.zero_grad()
    F.cross_entropy(net.inference_forward(x, alphas), y).backward()
    for layer in net.layers:
        sm = alphas[layer.offset : layer.offset + layer.n, 0]
        assert not torch.allclose(sm, torch.ones_like(sm))
        g_w = w_inf[f"{layer.name}.weight"].grad
        g_b = w_inf[f"{layer.name}.bias"].grad
        torch.testing.assert_close(layer.module.weight.grad, sm[:, None] * g_w)
        torch.testing.assert_close(layer.module.bias.grad, sm * g_b)


def _train_steps(net: NeuMoSyncNetwork, steps: int = 60, lr: float = 1e-3) -> tuple[float, float]:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(64, 12, generator=g)
    y = (x @ torch.randn(12, 3, generator=g)).argmax(1)  # a learnable rule
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        net.consolidate()
        net.update_statistics()
        losses.append(loss.item())
    return losses[0], losses[-1]


@pytest.mark.parametrize(
    "flag", ["consolidation", "plasticity_modulation", "activity_modulation", "neurosync"]
)
def test_ablation_fixes_its_mechanism_and_still_trains(flag):
    torch.manual_seed(0)
    net = NeuMoSyncNetwork(_small_mlp(), **{flag: False})
    if flag == "neurosync":
        assert isinstance(net.neurosync, LinearModulator)
        assert not any("encoder" in n or "context" in n for n, _ in net.named_parameters())
    else:
        assert isinstance(net.neurosync, NeuroSync)
    _randomise_head(net)
    x1, x2 = torch.randn(8, 12), 3 + torch.randn(8, 12)
    a1, a2 = net.alphas(x1), net.alphas(x2)
    if flag == "consolidation":
        assert not any(n.startswith("phi_") for n in net.state_dict())
        assert all(net.phi(k) == (None, None) for k in range(len(net.layers)))
        assert torch.all(a1[:, 1] == 0)
    elif flag == "plasticity_modulation":
        assert torch.all(a1[:, 0] == 1)
    elif flag == "activity_modulation":
        assert torch.all(a1[:, 2] == 1) and torch.all(a1[:, 3] == 0)
    else:  # no attention, no input context: alphas do not depend on the input
        assert torch.equal(a1, a2)
    # what stays on is still modulated
    others = {"plasticity_modulation": 0, "consolidation": 1, "activity_modulation": 2}
    for other, col in others.items():
        if other != flag:
            assert not torch.all(a1[:, col] == (1.0 if col != 1 else 0.0)), other
    torch.manual_seed(0)
    fresh = NeuMoSyncNetwork(MLP(12, (16, 16), 3), **{flag: False})
    first, last = _train_steps(fresh, steps=25, lr=1e-2)
    assert last < 0.1 * first


def test_neurosync_alphas_depend_on_the_input():
    net = NeuMoSyncNetwork(_small_mlp())
    _randomise_head(net)
    assert not torch.allclose(net.alphas(torch.randn(8, 12)), net.alphas(3 + torch.randn(8, 12)))


def test_activity_statistics_change_in_training_not_in_evaluation():
    net = NeuMoSyncNetwork(_small_mlp())
    x = torch.randn(16, 12)
    stats0 = net.features.activity.clone()
    net.train()
    net(x)
    assert net.update_statistics()
    stats1 = net.features.activity.clone()
    assert not torch.equal(stats0, stats1)
    # first batch: the statistics are the batch's (mean |h| of the first hidden layer)
    h1 = torch.relu(net.main[1](x))
    torch.testing.assert_close(stats1[: net.layers[0].n, 1], h1.abs().mean(0))
    torch.testing.assert_close(stats1[: net.layers[0].n, 3], (h1 > 0).float().mean(0))
    net.eval()
    net(torch.randn(16, 12))
    assert not net.update_statistics()
    assert torch.equal(net.features.activity, stats1)
    net.train()
    net(3 + torch.randn(16, 12))
    net.update_statistics()
    d = net.features.stats_decay
    assert not torch.equal(net.features.activity, stats1)
    assert torch.all(net.features.activity[:, 3] <= 1) and torch.all(
        net.features.activity[:, 3] >= 0
    )
    assert 0 < d < 1


def test_resnet_modulation_sits_after_batchnorm_and_skips_the_residual_stream():
    torch.manual_seed(0)
    model = SlimResNet18(num_classes=5, nf=4)
    net = NeuMoSyncNetwork(model).eval()
    modulated = {layer.name for layer in net.layers if layer.modulated}
    assert modulated == {f"blocks.{i}.conv1" for i in range(8)}
    layer = next(lay for lay in net.layers if lay.name == "blocks.0.conv1")
    alphas = torch.tensor([1.0, 0.0, 1.0, 0.0]).repeat(net.n_neurons, 1)
    alphas[layer.offset, 2] = 2.0  # gain of channel 0
    alphas[layer.offset + 1, 3] = 0.5  # shift of channel 1
    seen = {}
    h = model.blocks[0].act1.register_forward_pre_hook(lambda m, a: seen.update(x=a[0]))
    bn = {}
    h2 = model.blocks[0].bn1.register_forward_hook(lambda m, a, o: bn.update(x=o))
    x = torch.randn(2, 3, 16, 16)
    net.inference_forward(x, alphas)
    h.remove()
    h2.remove()
    # the bn hook registered after ours sees the modulated output; recompute BN alone
    z = model.blocks[0].bn1(model.blocks[0].conv1(model.act(model.bn1(model.conv1(x)))))
    expected = z.clone()
    expected[:, 0] = 2.0 * z[:, 0]
    expected[:, 1] = z[:, 1] + 0.5
    torch.testing.assert_close(seen["x"], expected)


def test_parameter_overhead_within_ten_percent_on_mlp():
    model = MLP(784, (100, 100), 10)
    assert sum(p.numel() for p in model.parameters()) == 89_610
    net = NeuMoSyncNetwork(model)
    assert 0.05 < net.parameter_overhead() <= 0.10
    phi = sum(b.numel() for n, b in net.named_buffers() if n.startswith("phi_"))
    assert phi == 89_610  # phi is a full copy, held in buffers, not counted as parameters


def test_same_seed_same_outputs():
    outs = []
    for _ in range(2):
        torch.manual_seed(5)
        net = NeuMoSyncNetwork(_small_mlp())
        _train_steps(net, steps=5)
        outs.append(net(torch.ones(2, 12)))
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ema_decay": 1.0},
        {"ema_decay": -0.1},
        {"d_model": 0},
        {"num_layers": 0},
        {"num_heads": 0},
        {"num_heads": 3},
        {"dim_feedforward": -1},
        {"embedding_size": 0},
        {"position_size": 0},
        {"alpha_scale": 0.0},
        {"stats_decay": 1.0},
        {"context": "token"},
        {"neurosync": False, "context": "sample"},
    ],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        NeuMoSyncNetwork(_small_mlp(), **kwargs)


def test_unknown_context_lists_valid_ones():
    with pytest.raises(ValueError, match="batch"):
        NeuMoSyncNetwork(_small_mlp(), context="token")


def test_a_deep_copy_captures_into_itself_not_the_original():
    # Probes fork the strategy with copy.deepcopy: the copy's hooks must act on the copy.
    net = NeuMoSyncNetwork(_small_mlp())
    net.train()
    clone = copy.deepcopy(net)
    clone(torch.randn(16, 12))
    assert all(c is None for c in net._captured)
    assert not net.update_statistics()
    assert clone.update_statistics()
    assert not torch.equal(clone.features.activity, net.features.activity)


def test_vectorised_batch_statistics_match_per_layer_statistics():
    """The one-pass statistics over all layers equal the per-layer definition
    (mean, mean |h|, std, fraction active, ReDo score within the layer)."""
    from avalanche_neumod.models.neumosync import NeuronFeatures, activity_statistics

    torch.manual_seed(0)
    feats = NeuronFeatures([5, 3, 2])
    rows = [torch.randn(7, n) * (k + 1) for k, n in enumerate((5, 3, 2))]
    expected = torch.cat([activity_statistics(r) for r in rows])
    torch.testing.assert_close(feats.batch_statistics(rows), expected)
    # the ReDo score is relative to the neuron's own layer: it averages to 1 per layer
    redo = feats.batch_statistics(rows)[:, 4]
    torch.testing.assert_close(
        torch.stack([redo[:5].mean(), redo[5:8].mean(), redo[8:].mean()]), torch.ones(3)
    )


def test_feature_redo_scores_are_models_units_redo_scores():
    """The features' ReDo column is :func:`models.units.redo_scores` of each layer (one
    implementation), on both the vectorised and the per-layer path; it is invariant to
    the activity's scale, so tiny activities score like large ones."""
    from avalanche_neumod.models.neumosync import NeuronFeatures, activity_statistics
    from avalanche_neumod.models.units import redo_scores

    torch.manual_seed(0)
    feats = NeuronFeatures([5, 3, 2])
    rows = [torch.randn(7, n) * 1e-7 for n in (5, 3, 2)]
    expected = torch.cat([redo_scores(r) for r in rows])
    torch.testing.assert_close(feats.batch_statistics(rows)[:, 4], expected)
    ragged = [rows[0], rows[1][:4], rows[2]]  # unequal sample counts: the per-layer path
    torch.testing.assert_close(
        feats.batch_statistics(ragged)[:, 4], torch.cat([redo_scores(r) for r in ragged])
    )
    torch.testing.assert_close(activity_statistics(rows[0])[:, 4], redo_scores(rows[0]))
    torch.testing.assert_close(
        feats.batch_statistics(rows)[:, 4], feats.batch_statistics([r * 1e7 for r in rows])[:, 4]
    )


# -------------------------------------------------------------------------- variants
def test_per_alpha_scales_bound_each_alpha():
    torch.manual_seed(0)
    net = NeuMoSyncNetwork(_small_mlp(), alpha_scale=(1.0, 0.5, 0.8, 0.1))
    assert net.alpha_scales == (1.0, 0.5, 0.8, 0.1)
    with torch.no_grad():  # saturate tanh: every alpha at its bound
        net.neurosync.head.weight.zero_()
        net.neurosync.head.bias.copy_(torch.tensor([-50.0, 50.0, -50.0, -50.0]))
    a = net.alphas(torch.randn(4, 12))
    hidden = net.activity_mask
    torch.testing.assert_close(a[:, 0], torch.zeros(net.n_neurons))  # 1 - 1.0
    torch.testing.assert_close(a[:, 1], torch.full((net.n_neurons,), 0.5))
    torch.testing.assert_close(a[hidden, 2], torch.full((int(hidden.sum()),), 0.2))
    torch.testing.assert_close(a[hidden, 3], torch.full((int(hidden.sum()),), -0.1))
    # one number is the same as four equal ones
    one = NeuMoSyncNetwork(_small_mlp(), alpha_scale=0.7)
    four = NeuMoSyncNetwork(copy.deepcopy(one.main), alpha_scale=(0.7,) * 4)
    four.load_state_dict(one.state_dict())
    _randomise_head(one)
    four.load_state_dict(one.state_dict())
    x = torch.randn(3, 12)
    assert torch.equal(one.alphas(x), four.alphas(x))


def test_default_alphas_are_bounded():
    """The default (design study): alpha_SM and alpha_gain within [0.5, 1.5],
    |alpha_WC| <= 0.5 and |alpha_shift| <= 0.1, reached when tanh saturates."""
    net = NeuMoSyncNetwork(_small_mlp())
    assert net.alpha_scales == (0.5, 0.5, 0.5, 0.1)
    hidden = net.activity_mask
    for sign in (1.0, -1.0):
        with torch.no_grad():
            net.neurosync.head.weight.zero_()
            net.neurosync.head.bias.fill_(50.0 * sign)
        a = net.alphas(torch.randn(4, 12))
        torch.testing.assert_close(a[:, 0], torch.full((net.n_neurons,), 1 + 0.5 * sign))
        torch.testing.assert_close(a[:, 1], torch.full((net.n_neurons,), 0.5 * sign))
        torch.testing.assert_close(a[hidden, 2], torch.full((int(hidden.sum()),), 1 + 0.5 * sign))
        torch.testing.assert_close(a[hidden, 3], torch.full((int(hidden.sum()),), 0.1 * sign))
    # DESIGN.md's unbounded map is alpha_scale=1.0
    assert NeuMoSyncNetwork(_small_mlp(), alpha_scale=1.0).alpha_scales == (1.0,) * 4


@pytest.mark.parametrize("scale", [(1.0, 1.0, 1.0), (1.0, 1.0, 1.0, 0.0), float("nan"), -1.0])
def test_bad_alpha_scales_raise(scale):
    with pytest.raises(ValueError, match="alpha_scale"):
        NeuMoSyncNetwork(_small_mlp(), alpha_scale=scale)


def test_layer_feature_norm_standardises_the_statistics_within_each_layer():
    torch.manual_seed(0)
    net = NeuMoSyncNetwork(_small_mlp(), feature_norm="layer")
    ref = NeuMoSyncNetwork(_small_mlp())
    assert net.features.size == ref.features.size
    net.train()
    net(torch.randn(32, 12))
    net.update_statistics()
    f = net.features(net.weight_statistics())
    p = net.features.position_size
    stats = f[:, p : p + 8]
    for layer in net.layers:
        part = stats[layer.offset : layer.offset + layer.n]
        torch.testing.assert_close(part.mean(0), torch.zeros(8), atol=1e-5, rtol=0)
        std = part.std(0, unbiased=False)
        varies = std > 1e-3  # a statistic constant within the layer stays 0 (eps 1e-5)
        assert int(varies.sum()) >= 4
        torch.testing.assert_close(std[varies], torch.ones(int(varies.sum())), atol=1e-2, rtol=0)
    # a shift common to a whole layer is invisible; a neuron's difference is not
    fs = net.features
    x = torch.randn(net.n_neurons, 3)
    shifted = x.clone()
    shifted[: net.layers[0].n] += 5.0
    torch.testing.assert_close(fs.layer_standardise(x), fs.layer_standardise(shifted))
    both = NeuMoSyncNetwork(_small_mlp(), feature_norm="both")
    assert both.features.size == ref.features.size + 8
    both(torch.randn(4, 12))  # runs


def test_unknown_feature_norm_and_head_bias_list_valid_ones():
    with pytest.raises(ValueError, match="symlog"):
        NeuMoSyncNetwork(_small_mlp(), feature_norm="zscore")
    with pytest.raises(ValueError, match="layer"):
        NeuMoSyncNetwork(_small_mlp(), head_bias="neuron")


@pytest.mark.parametrize("neurosync", [True, False])
def test_head_bias_variants(neurosync):
    torch.manual_seed(0)
    none = NeuMoSyncNetwork(_small_mlp(), head_bias="none", neurosync=neurosync)
    assert none.neurosync.head.bias is None and none.layer_bias is None
    per_layer = NeuMoSyncNetwork(_small_mlp(), head_bias="layer", neurosync=neurosync)
    assert per_layer.neurosync.head.bias is None
    assert per_layer.layer_bias.shape == (len(per_layer.layers), 4)
    x = torch.randn(5, 12)
    for net in (none, per_layer):  # neutral at initialisation
        a = net.alphas(x)
        assert torch.equal(a, torch.tensor([1.0, 0.0, 1.0, 0.0]).expand_as(a))
    # a layer's bias moves that layer's alphas only
    with torch.no_grad():
        per_layer.layer_bias[1, 0] = 0.5
    a = per_layer.alphas(x)
    second = slice(per_layer.layers[1].offset, per_layer.layers[1].offset + per_layer.layers[1].n)
    want = 1 + per_layer.alpha_scales[0] * math.tanh(0.5)
    torch.testing.assert_close(a[second, 0], torch.full_like(a[second, 0], want))
    others = torch.ones(per_layer.n_neurons, dtype=torch.bool)
    others[second] = False
    assert torch.all(a[others, 0] == 1)
    # and it is trained
    F.cross_entropy(per_layer(x), torch.randint(0, 3, (5,))).backward()
    assert per_layer.layer_bias.grad is not None and per_layer.layer_bias.grad.abs().sum() > 0


def test_inference_weights_accept_a_replacement_theta():
    torch.manual_seed(0)
    net = NeuMoSyncNetwork(_small_mlp())
    _randomise_head(net)
    x = torch.randn(3, 12)
    alphas = net.alphas(x).detach()
    theta = {k: v + 1.0 for k, v in net.neuron_parameters().items()}
    moved = copy.deepcopy(net)
    with torch.no_grad():
        for v in moved.neuron_parameters().values():
            v.add_(1.0)
    got = net.inference_forward(x, alphas, net.inference_weights(alphas, theta=theta))
    torch.testing.assert_close(got, moved.inference_forward(x, alphas))
    assert not torch.allclose(got, net.inference_forward(x, alphas))


@pytest.mark.parametrize("context", ["batch", "sample"])
def test_context_to_neurons_adds_the_context_to_every_neuron_token(context):
    torch.manual_seed(0)
    net = NeuMoSyncNetwork(_small_mlp(), context=context, context_to_neurons=True)
    ref = NeuMoSyncNetwork(copy.deepcopy(net.main), context=context)
    ref.load_state_dict(net.state_dict())
    _randomise_head(net)
    ref.load_state_dict(net.state_dict())
    x = torch.randn(4, 12)
    assert not torch.allclose(net.alphas(x), ref.alphas(x))
    # by hand: the encoder over [c, t_i + c]
    ns = net.neurosync
    f = net.features(net.weight_statistics())
    proj = ns._projection(12, x)
    tokens = ns.feature_proj(f)
    if context == "batch":
        c = ns.context_proj(x.mean(0) @ proj)
        seq = torch.cat((c[None], tokens + c))[None]
        r = ns.head(ns.encoder(seq)[0, 1:])
    else:
        c = ns.context_proj(x @ proj)
        seq = torch.cat((c[:, None], tokens[None] + c[:, None]), dim=1)
        r = ns.head(ns.encoder(seq)[:, 1:])
    torch.testing.assert_close(
        net.alphas(x), torch.addcmul(net.alpha_offset, net.alpha_gate, r.tanh())
    )
    with pytest.raises(ValueError, match="neurosync"):
        NeuMoSyncNetwork(_small_mlp(), neurosync=False, context_to_neurons=True)


@pytest.mark.parametrize("name", ["mlp", "convnet", "sequential"])
def test_small_batch_output_mixing_equals_materialised_weights(name):
    """Batch context, small batch: Linear layers mix outputs (alpha_SM theta.h + alpha_WC
    phi.h) instead of materialising w_inf; same outputs and gradients up to rounding."""
    from avalanche_neumod.models.neumosync import OUTPUT_MIX_MAX_BATCH

    make, shape = MODELS[name]
    torch.manual_seed(0)
    net = NeuMoSyncNetwork(make())
    _randomise_head(net)
    with torch.no_grad():
        for layer in net.layers:
            for t in net.phi(layer.index):
                t.add_(0.3 * torch.randn_like(t))
    x = torch.randn(shape)
    assert len(x) <= OUTPUT_MIX_MAX_BATCH
    alphas = net.alphas(x).detach().requires_grad_()
    grads = []
    for weights in (None, net.inference_weights(alphas)):
        net.zero_grad()
        alphas.grad = None
        out = net.inference_forward(x, alphas, weights)
        out.square().sum().backward()
        grads.append((out.detach(), alphas.grad.clone(), net.main[-1].weight.grad.clone()))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=2e-4)
