"""CBP: the recurrence, the replacement rule and its side effects."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from avalanche_neumod.models import MLP, ConvNet
from avalanche_neumod.training.plugins.cbp import CBPPlugin


def _mlp() -> nn.Module:
    return MLP(6, (8, 8), 3)


def _hidden(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Hidden activations of an MLP computed by hand (independent of units.py)."""
    h1 = torch.relu(model[1](x.flatten(1)))
    h2 = torch.relu(model[3](h1))
    return [h1, h2]


def _expected_y(w_in, w_out, h, fhat, utility):
    out_mag = w_out.abs().mean(dim=0)
    if utility == "adaptable":
        return out_mag * (h - fhat).abs().mean(dim=0) / w_in.abs().mean(dim=1)
    return out_mag * h.abs().mean(dim=0)


@pytest.mark.parametrize("utility", ["adaptable", "contribution"])
def test_utilities_and_bias_corrections_follow_the_recurrence(utility):
    model = _mlp()
    plugin = CBPPlugin(rho=0.0, m=0, d=0.9, utility=utility)
    plugin.attach(model)
    d = 0.9
    f = [torch.zeros(8), torch.zeros(8)]
    u = [torch.zeros(8), torch.zeros(8)]
    for step in range(1, 6):
        x = torch.randn(5, 6)
        with torch.no_grad():
            model(x)
            hs = _hidden(model, x)
        plugin.update_units(plugin.recorder.activity)
        layers = [(model[1], model[3]), (model[3], model[5])]
        for j, ((w_in, w_out), h) in enumerate(zip(layers, hs)):
            f[j] = d * f[j] + (1 - d) * h.mean(dim=0)
            fhat = f[j] / (1 - d**step)
            y = _expected_y(w_in.weight, w_out.weight, h, fhat, utility)
            u[j] = d * u[j] + (1 - d) * y
            st = plugin.state[str(2 * j + 1)]
            assert torch.allclose(st.age, torch.full((8,), float(step)))
            assert torch.allclose(st.f.flatten(), f[j], atol=1e-6)
            assert torch.allclose(st.fhat(d).flatten(), fhat, atol=1e-6)
            assert torch.allclose(st.u, u[j], atol=1e-6)
            assert torch.allclose(st.uhat(d), u[j] / (1 - d**step), atol=1e-6)


def _consumer_mean_output(consumer: nn.Module, hu, fhat: torch.Tensor) -> torch.Tensor:
    """The consumer's output for its mean input (fhat per unit copy and position).

    Functional calls: calling the module would fire the plugin's recorder hooks.
    """
    cols = fhat.reshape(-1)  # (wf, n, S) in consumer column order
    if isinstance(consumer, nn.Linear):
        return nn.functional.linear(cols.unsqueeze(0), consumer.weight, consumer.bias)
    k = consumer.kernel_size
    img = cols.view(1, -1, 1, 1).expand(1, cols.numel(), k[0], k[1])
    return nn.functional.conv2d(img, consumer.weight, consumer.bias)


@pytest.mark.parametrize("optim", ["adam", "sgd"])
def test_replacement_of_the_lowest_utility_eligible_units(optim):
    torch.manual_seed(1)
    model = _mlp()
    m, d, rho = 3, 0.9, 0.25
    plugin = CBPPlugin(rho=rho, m=m, d=d, reset_sgd_momentum=optim == "sgd")
    plugin.attach(model)
    if optim == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    for _ in range(m):  # ages 1..m: nobody is eligible yet
        x = torch.randn(7, 6)
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
        assert plugin.update_units(plugin.recorder.activity, opt) == {}
    # the step at which all units become eligible (age m + 1 > m)
    x = torch.randn(7, 6)
    opt.zero_grad()
    model(x).sum().backward()
    with torch.no_grad():
        hs = _hidden(model, x)  # the activity of this iteration's forward
    opt.step()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    states = {id(p): {k: v.clone() for k, v in opt.state[p].items()} for p in model.parameters()}
    expected, fhats = {}, {}
    for j, name in enumerate(["1", "3"]):
        st = plugin.state[name]
        w_in, w_out = model[2 * j + 1].weight, model[2 * j + 3].weight
        f = d * st.f.flatten() + (1 - d) * hs[j].mean(0)
        fhat = f / (1 - d ** (m + 1))
        u = d * st.u + (1 - d) * _expected_y(w_in, w_out, hs[j], fhat, "adaptable")
        uhat = u / (1 - d ** (m + 1))
        expected[name] = set(torch.argsort(uhat)[: int(rho * 8)].tolist())
        fhats[name] = fhat
    mean_out_before = {
        hu.name: _consumer_mean_output(hu.consumer, hu, fhats[hu.name]).detach()
        for hu in plugin.units
    }
    replaced = plugin.update_units(plugin.recorder.activity, opt)
    for j, hu in enumerate(plugin.units):
        idx = replaced[hu.name]
        assert len(idx) == int(rho * 8) == 2  # exactly rho * |eligible|
        assert set(idx.tolist()) == expected[hu.name]
        keep = torch.tensor([i for i in range(8) if i not in set(idx.tolist())])
        pw, cw = f"{hu.name}.weight", f"{hu.consumer_name}.weight"
        # incoming weights fresh (new values, in the default bound), bias 0
        b = 1 / math.sqrt(hu.producer.weight.shape[1])
        assert not torch.equal(hu.producer.weight[idx], before[pw][idx])
        assert hu.producer.weight[idx].abs().max() <= b
        expect_keep = before[pw][keep].clone()
        if j > 0:  # columns fed by the previous layer's replaced units are cut
            expect_keep[:, replaced[plugin.units[j - 1].name]] = 0
        assert torch.equal(hu.producer.weight[keep], expect_keep)
        assert torch.all(hu.producer.bias[idx] == 0)
        # consumer rows not themselves replaced (as units of the next hidden layer)
        nxt = replaced.get(hu.consumer_name, torch.tensor([], dtype=torch.long))
        rows = torch.tensor([r for r in range(hu.consumer.weight.shape[0]) if r not in nxt])
        # outgoing weights 0, the others untouched
        assert torch.all(hu.consumer.weight[rows][:, idx] == 0)
        assert torch.equal(hu.consumer.weight[rows][:, keep], before[cw][rows][:, keep])
        # the next layer's output for the mean input is unchanged
        after = _consumer_mean_output(hu.consumer, hu, fhats[hu.name])
        assert torch.allclose(after[:, rows], mean_out_before[hu.name][:, rows], atol=1e-6)
        # age, f, u reset
        st = plugin.state[hu.name]
        assert torch.all(st.age[idx] == 0) and torch.all(st.age[keep] == m + 1)
        assert torch.all(st.f[:, idx] == 0) and torch.all(st.u[idx] == 0)
        # optimizer state of those weights reset, the rest kept
        for p, dim, ix, kx in (
            (hu.producer.weight, 0, idx, keep),
            (hu.producer.bias, 0, idx, keep),
            (hu.consumer.weight, 1, idx, keep),
        ):
            sel = rows if p is hu.consumer.weight else slice(None)
            for key, value in opt.state[p].items():
                if not torch.is_tensor(value) or value.shape != p.shape:
                    assert torch.equal(torch.as_tensor(value), torch.as_tensor(states[id(p)][key]))
                    continue
                assert torch.all(value.index_select(dim, ix)[sel] == 0), key
                old = states[id(p)][key].index_select(dim, kx)[sel].clone()
                if p is hu.producer.weight and j > 0:  # cut columns: state reset too
                    old[:, replaced[plugin.units[j - 1].name]] = 0
                assert torch.equal(value.index_select(dim, kx)[sel], old)
                assert old.abs().sum() > 0


def test_next_bias_correction_false_keeps_the_bias():
    model = _mlp()
    plugin = CBPPlugin(rho=0.5, m=0, d=0.9, next_bias_correction=False)
    plugin.attach(model)
    bias = model[5].bias.detach().clone()  # the output layer: consumer of layer "3"
    with torch.no_grad():
        model(torch.randn(4, 6))
    replaced = plugin.update_units(plugin.recorder.activity)
    assert len(replaced["3"]) == 4
    assert torch.equal(model[5].bias, bias)


def test_units_younger_than_m_are_never_replaced():
    model = _mlp()
    m = 3
    plugin = CBPPlugin(rho=0.3, m=m, d=0.9)
    plugin.attach(model)
    total = 0
    for _ in range(30):
        with torch.no_grad():
            model(torch.randn(4, 6))
        ages = {k: st.age.clone() + 1 for k, st in plugin.state.items()}
        for name, idx in plugin.update_units(plugin.recorder.activity).items():
            assert torch.all(ages[name][idx] > m)
            total += len(idx)
    assert total > 0


def test_fractional_counts_accumulate():
    model = _mlp()
    plugin = CBPPlugin(rho=0.05, m=0, d=0.9)  # 0.4 units per step per layer
    plugin.attach(model)
    counts = []
    for _ in range(5):
        with torch.no_grad():
            model(torch.randn(4, 6))
        out = plugin.update_units(plugin.recorder.activity)
        counts.append(len(out.get("1", [])))
    # 0.4, 0.8, 1.2 -> 1 (0.2 left), 0.6, 1.0 -> 1; with m = 0 every unit stays eligible
    assert sum(counts) == 2 and counts[2] == 1


def test_bernoulli_counts_without_accumulation():
    model = _mlp()
    plugin = CBPPlugin(rho=0.05, m=0, d=0.9, accumulate=False)  # 0.4 expected per step
    plugin.attach(model)
    n = 0
    for _ in range(200):
        with torch.no_grad():
            model(torch.randn(4, 6))
        n += len(plugin.update_units(plugin.recorder.activity).get("1", []))
    assert 40 < n < 120


def test_conv_layers_channels_as_units():
    torch.manual_seed(2)
    model = ConvNet(in_channels=1, num_classes=3, input_size=20, channels=4, hidden=6)
    d = 0.9
    plugin = CBPPlugin(rho=0.5, m=0, d=d)
    plugin.attach(model)
    names = [hu.name for hu in plugin.units]
    assert names == ["0", "3", "7", "9"]
    x = torch.randn(5, 1, 20, 20)
    with torch.no_grad():
        model(x)
    act = {k: v.clone() for k, v in plugin.recorder.activity.items()}
    fhats = {}
    for hu in plugin.units:
        fb = act[hu.name].mean(0)
        if hu.spatial == 1:
            fb = fb.mean(-1, keepdim=True)
        fhats[hu.name] = fb  # one step: f = (1-d) fb, fhat = f / (1-d) = fb
    before = {
        hu.name: _consumer_mean_output(hu.consumer, hu, fhats[hu.name]).detach()
        for hu in plugin.units
    }
    conv1_w = model[0].weight.detach().clone()
    replaced = plugin.update_units(act)
    idx = replaced["0"]
    assert len(idx) == 2  # rho * 4 channels
    assert not torch.equal(model[0].weight[idx], conv1_w[idx])
    assert plugin.units[1].spatial == 4  # conv -> flatten -> linear: 4 columns per channel
    for hu in plugin.units:
        nxt = replaced.get(hu.consumer_name, torch.tensor([], dtype=torch.long))
        rows = torch.tensor([r for r in range(hu.consumer.weight.shape[0]) if r not in nxt])
        cols = hu.outgoing_index(replaced[hu.name]).flatten()
        assert torch.all(hu.consumer.weight[rows][:, cols] == 0), hu.name  # kernels / columns
        after = _consumer_mean_output(hu.consumer, hu, fhats[hu.name])
        assert torch.allclose(after[:, rows], before[hu.name][:, rows], atol=1e-5), hu.name


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rho": -0.1},
        {"rho": 1.5},
        {"m": -1},
        {"d": 1.0},
        {"d": -0.1},
        {"m": 2.5},
        {"utility": "magnitude"},
    ],
)
def test_bad_hyperparameters_raise(kwargs):
    with pytest.raises(ValueError):
        CBPPlugin(**kwargs)


@pytest.mark.parametrize("name", ["rho", "m", "d"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_hyperparameters_raise_naming_the_argument(name, value):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        CBPPlugin(**{name: value})


def test_unknown_utility_lists_the_valid_ones():
    with pytest.raises(ValueError, match="adaptable"):
        CBPPlugin(utility="nope")


# -- generate-and-test order -----------------------------------------------------------------


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [mod for mod in model if isinstance(mod, nn.Linear)]


def test_minimal_case_utilities_are_read_before_any_layer_changes():
    """The minimal case that showed the order matters: MLP(4, (3, 3), 2), biases 0.5,
    rho 1/3, m 0, d 0.5, one call.

    One unit per layer is replaced. Layer 1's adaptable utility divides by the mean
    |incoming weight|, so it must be read before layer 0's replacement cuts a column
    of those weights (replacing layer by layer gave [0.0902, 0.0830]).
    """
    torch.manual_seed(0)
    model = MLP(4, (3, 3), 2)
    lin = _linears(model)
    with torch.no_grad():
        for layer in lin:
            layer.bias.fill_(0.5)
    x = torch.randn(5, 4)
    w = [layer.weight.detach().clone() for layer in lin]
    d = 0.5
    plugin = CBPPlugin(rho=1 / 3, m=0, d=d)
    plugin.attach(model)
    with torch.no_grad():
        model(x)
        h1 = _hidden(model, x)[1]
    replaced = plugin.update_units(plugin.recorder.activity)
    assert [len(replaced[k]) for k in ("1", "3")] == [1, 1]
    keep = [i for i in range(3) if i != int(replaced["3"])]
    # one step from 0: f = (1-d) mean h, fhat = mean h, u = (1-d) y, on the untouched weights
    y = _expected_y(w[1], w[2], h1, h1.mean(0), "adaptable")
    u = plugin.state["3"].u[keep]
    assert torch.allclose(u, (1 - d) * y[keep], atol=1e-6)
    assert torch.allclose(u, torch.tensor([0.0636, 0.0734]), atol=1e-4)


class _GnTReference:
    """Generate-and-test on an MLP, written from its definition (independent of cbp.py).

    Per call: test every hidden layer (age, f, u, the eligible units with the smallest
    bias-corrected utility, fractional counts accumulated), then generate in every
    layer (fresh incoming row, bias 0, next bias += W_out[:, i] * fhat_i, W_out[:, i] = 0,
    age = f = u = 0). New incoming rows are random, so they are taken from ``fresh``.
    """

    def __init__(
        self, layers: list[nn.Linear], rho: float, m: int, d: float, bias_correction: bool
    ):
        self.layers, self.rho, self.m, self.d = layers, rho, m, d
        self.bias_correction = bias_correction
        sizes = [layer.out_features for layer in layers[:-1]]
        self.age = [torch.zeros(n) for n in sizes]
        self.f = [torch.zeros(n) for n in sizes]
        self.u = [torch.zeros(n) for n in sizes]
        self.acc = [0.0 for _ in sizes]

    @torch.no_grad()
    def step(self, hs: list[torch.Tensor], fresh: list[torch.Tensor]) -> list[torch.Tensor]:
        d = self.d
        chosen = []
        for j, h in enumerate(hs):  # test
            w_in, w_out = self.layers[j].weight, self.layers[j + 1].weight
            self.age[j] += 1
            corr = 1 - d ** self.age[j]
            self.f[j] = d * self.f[j] + (1 - d) * h.mean(0)
            fhat = self.f[j] / corr
            y = w_out.abs().mean(0) * (h - fhat).abs().mean(0) / w_in.abs().mean(1)
            self.u[j] = d * self.u[j] + (1 - d) * y
            eligible = torch.nonzero(self.age[j] > self.m).flatten()
            k = 0
            if len(eligible):
                self.acc[j] += self.rho * len(eligible)
                k = int(self.acc[j])
                self.acc[j] -= k
            uhat = self.u[j] / corr
            idx = eligible[torch.argsort(uhat[eligible])[:k]]
            chosen.append((idx, fhat[idx]))
        for j, (idx, fhat) in enumerate(chosen):  # generate
            cur, nxt = self.layers[j], self.layers[j + 1]
            cur.weight[idx] = fresh[j][idx]
            cur.bias[idx] = 0
            if self.bias_correction:
                nxt.bias += nxt.weight[:, idx] @ fhat
            nxt.weight[:, idx] = 0
            self.age[j][idx] = 0
            self.f[j][idx] = 0
            self.u[j][idx] = 0
        return [idx for idx, _ in chosen]


@pytest.mark.parametrize("bias_correction", [True, False])
def test_steps_follow_generate_and_test(bias_correction):
    """A few trained steps replacing units in both layers match the reference above."""
    torch.manual_seed(3)
    model = _mlp()
    ref_model = MLP(6, (8, 8), 3)
    ref_model.load_state_dict(model.state_dict())
    rho, m, d = 0.3, 1, 0.8  # 2.4 units per layer and step once all are eligible
    plugin = CBPPlugin(rho=rho, m=m, d=d, next_bias_correction=bias_correction)
    plugin.attach(model)
    ref = _GnTReference(_linears(ref_model), rho, m, d, bias_correction)
    opts = [torch.optim.SGD(net.parameters(), lr=0.05) for net in (model, ref_model)]
    n_replaced = 0
    for _ in range(6):
        x, t = torch.randn(16, 6), torch.randint(0, 3, (16,))
        with torch.no_grad():
            hs = _hidden(ref_model, x)
        for net, opt in zip((model, ref_model), opts):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), t).backward()
            opt.step()
        replaced = plugin.update_units(plugin.recorder.activity)
        fresh = [layer.weight.detach() for layer in _linears(model)]
        expected = ref.step(hs, fresh)
        for j, name in enumerate(["1", "3"]):
            got = replaced.get(name, torch.tensor([], dtype=torch.long))
            assert sorted(got.tolist()) == sorted(expected[j].tolist()), name
            n_replaced += len(got)
            st = plugin.state[name]
            assert torch.allclose(st.u, ref.u[j], atol=1e-6), name
            assert torch.allclose(st.f.flatten(), ref.f[j], atol=1e-6), name
            assert torch.equal(st.age, ref.age[j]), name
        for (k, v), v_ref in zip(model.state_dict().items(), ref_model.state_dict().values()):
            assert torch.allclose(v, v_ref, atol=1e-6), k
    assert n_replaced >= 4 * 2 * 2  # several replacements in both layers


# -- replacement counts without accumulation --------------------------------------------------


def _counts(plugin: CBPPlugin, steps: int) -> list[int]:
    model = _mlp()
    plugin.attach(model)
    counts = []
    for _ in range(steps):
        with torch.no_grad():
            model(torch.randn(4, 6))
        counts.append(len(plugin.update_units(plugin.recorder.activity).get("1", [])))
    return counts


def test_gnt_sampling_replaces_floor_above_one_unit():
    torch.manual_seed(0)
    counts = _counts(CBPPlugin(rho=0.15, m=0, d=0.9, accumulate=False), 60)  # 1.2 per step
    assert counts == [1] * 60  # GnT's default: floor(1.2), no draw


def test_floor_bernoulli_sampling_adds_a_draw_for_the_fraction():
    torch.manual_seed(0)
    plugin = CBPPlugin(rho=0.15, m=0, d=0.9, accumulate=False, sampling="floor_bernoulli")
    counts = _counts(plugin, 200)  # 1 + Bernoulli(0.2): 240 expected
    assert set(counts) == {1, 2}
    assert 215 < sum(counts) < 265


@pytest.mark.parametrize("sampling", ["gnt", "floor_bernoulli"])
def test_both_samplings_draw_a_bernoulli_below_one_unit(sampling):
    torch.manual_seed(0)
    plugin = CBPPlugin(rho=0.05, m=0, d=0.9, accumulate=False, sampling=sampling)
    counts = _counts(plugin, 200)  # Bernoulli(0.4): 80 expected
    assert set(counts) == {0, 1}
    assert 55 < sum(counts) < 105


def test_unknown_sampling_lists_the_valid_ones():
    with pytest.raises(ValueError, match="floor_bernoulli"):
        CBPPlugin(sampling="poisson")


# -- optimizer state ---------------------------------------------------------------------------


@pytest.mark.parametrize("reset", [False, True])
def test_sgd_momentum_kept_by_default_and_reset_on_request(reset):
    torch.manual_seed(4)
    model = _mlp()
    kwargs = {} if not reset else {"reset_sgd_momentum": True}
    plugin = CBPPlugin(rho=0.25, m=0, d=0.9, **kwargs)
    plugin.attach(model)
    opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    opt.zero_grad()
    model(torch.randn(7, 6)).sum().backward()
    opt.step()
    bufs = {id(p): opt.state[p]["momentum_buffer"].clone() for p in model.parameters()}
    replaced = plugin.update_units(plugin.recorder.activity, opt)
    hu = plugin.units[0]
    idx = replaced[hu.name]
    for p in model.parameters():
        buf = opt.state[p]["momentum_buffer"]
        if not reset:  # GnT: nothing is reset for SGD
            assert torch.equal(buf, bufs[id(p)])
    rows = opt.state[hu.producer.weight]["momentum_buffer"][idx]
    cols = opt.state[hu.consumer.weight]["momentum_buffer"][:, idx]
    assert bufs[id(hu.producer.weight)][idx].abs().sum() > 0
    assert torch.all(rows == 0) == reset and torch.all(cols == 0) == reset


def test_cbp_strategy_forwards_every_plugin_argument():
    from avalanche_neumod.training.strategies import CBP

    model = _mlp()
    strategy = CBP(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
        sampling="floor_bernoulli",
        reset_sgd_momentum=True,
        accumulate=False,
    )
    assert strategy.cbp.sampling == "floor_bernoulli"
    assert strategy.cbp.reset_sgd_momentum is True
    with pytest.raises(ValueError, match="gnt"):
        CBP(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.01), sampling="x")
