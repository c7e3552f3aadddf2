"""NeuMoSync alpha diagnostics: spread, task change, input sensitivity (pure functions + metric)."""

from __future__ import annotations

import pytest
import torch
from avalanche.training.plugins import EvaluationPlugin

from avalanche_neumod import ExperienceTensors, tensor_benchmark
from avalanche_neumod.evaluation.neumosync_diagnostics import (
    NeuMoSyncDiagnostics,
    alpha_difference,
    alpha_spread,
    layer_slices,
)
from avalanche_neumod.experiment import measures
from avalanche_neumod.models import MLP
from avalanche_neumod.models.neumosync import NeuMoSyncNetwork
from avalanche_neumod.training.neumosync import NeuMoSync

SLICES = {"a": slice(0, 3), "b": slice(3, 5)}


def _known() -> torch.Tensor:
    """Layer a: SM 1.5, 1.0, 0.5 (std sqrt(1/6), dev 1/3); WC 0.2 everywhere; gain 1;
    shift -0.3. Layer b: SM 2.0, WC -0.1, gain 1.0 / 3.0, shift 0."""
    a = torch.tensor(
        [
            [1.5, 0.2, 1.0, -0.3],
            [1.0, 0.2, 1.0, -0.3],
            [0.5, 0.2, 1.0, -0.3],
            [2.0, -0.1, 1.0, 0.0],
            [2.0, -0.1, 3.0, 0.0],
        ]
    )
    return a


def test_spread_of_known_alphas():
    s = alpha_spread(_known(), SLICES)
    assert s["a"]["sm"]["std"] == pytest.approx((1 / 6) ** 0.5)
    assert s["a"]["sm"]["dev"] == pytest.approx(1 / 3)
    # one global value: no spread, but a deviation from neutral
    assert s["a"]["wc"] == pytest.approx({"std": 0.0, "dev": 0.2})
    assert s["a"]["shift"] == pytest.approx({"std": 0.0, "dev": 0.3})
    assert s["a"]["gain"] == pytest.approx({"std": 0.0, "dev": 0.0})
    assert s["b"]["gain"] == pytest.approx({"std": 1.0, "dev": 1.0})
    assert s["b"]["sm"] == pytest.approx({"std": 0.0, "dev": 1.0})
    # per-sample alphas are reduced to the per-neuron mean over samples first
    per_sample = torch.stack((_known() - 0.1, _known() + 0.1))
    got, ref = alpha_spread(per_sample, SLICES), alpha_spread(_known(), SLICES)
    for layer in SLICES:
        for kind in ref[layer]:
            assert got[layer][kind] == pytest.approx(ref[layer][kind])


def test_difference_of_known_alphas():
    a = _known()
    b = a.clone()
    b[0, 0] += 0.6  # one SM of layer a moves by 0.6: mean over 3 neurons 0.2
    b[3:, 3] -= 0.5  # every shift of layer b moves by 0.5
    d = alpha_difference(a, b, SLICES)
    assert d["a"] == pytest.approx({"sm": 0.2, "wc": 0.0, "gain": 0.0, "shift": 0.0})
    assert d["b"] == pytest.approx({"sm": 0.0, "wc": 0.0, "gain": 0.0, "shift": 0.5})
    assert alpha_difference(a, a, SLICES)["a"] == pytest.approx(dict.fromkeys(d["a"], 0.0))
    with pytest.raises(ValueError):
        alpha_difference(a, a[:4], SLICES)
    with pytest.raises(ValueError):
        alpha_spread(torch.zeros(5, 3), SLICES)


def test_layer_slices_cover_the_network_in_order():
    net = NeuMoSyncNetwork(MLP(12, (7, 5), 3))
    sl = layer_slices(net)
    assert list(sl) == net.layer_names
    assert [s.stop - s.start for s in sl.values()] == [7, 5, 3]
    assert list(sl.values())[-1].stop == net.n_neurons


def _stream(n_exp=2, n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    exps = [
        ExperienceTensors(k + torch.randn(n, 12, generator=g), torch.randint(0, 3, (n,)), 0)
        for k in range(n_exp)
    ]
    return tensor_benchmark(exps, exps)


def _run(net: NeuMoSyncNetwork, lr: float = 1e-2, **metric_kwargs) -> tuple[dict, list]:
    torch.manual_seed(0)
    metric = NeuMoSyncDiagnostics(samples=16, **metric_kwargs)
    strategy = NeuMoSync(
        model=net, lr=lr, train_mb_size=16, evaluator=EvaluationPlugin(metric, loggers=[])
    )
    for exp in _stream().train_stream:
        strategy.train(exp)
    return strategy.evaluator.get_all_metrics(), metric.history


def test_metric_on_a_network_with_known_constant_alphas():
    """neurosync=False with a frozen head of weight 0: the alphas are tanh of the head's
    bias, the same for every neuron and every input: no spread, no input sensitivity,
    no change across tasks, and a known deviation from neutral."""
    net = NeuMoSyncNetwork(MLP(12, (7, 5), 3), neurosync=False)
    with torch.no_grad():
        net.neurosync.head.bias.copy_(torch.tensor([0.5, -0.2, 0.3, -0.4]))
    net.neurosync.head.requires_grad_(False)
    values, history = _run(net)
    assert len(history) == 2
    # alpha = neutral + a tanh(r): the deviation is a |tanh(r)|, a per alpha kind
    t = torch.tensor(net.alpha_scales) * torch.tanh(torch.tensor([0.5, -0.2, 0.3, -0.4]))
    t = t.abs().tolist()
    for layer in net.layer_names:
        hidden = layer != net.layer_names[-1]
        for j, kind in enumerate(("sm", "wc", "gain", "shift")):
            key = f"/train_phase/train_stream/{layer}/{kind}"
            dev = t[j] if hidden or kind in ("sm", "wc") else 0.0  # output: no activity mod.
            assert values["AlphaDev" + key][1] == pytest.approx([dev, dev], abs=1e-6)
            assert values["AlphaStd" + key][1] == pytest.approx([0, 0], abs=1e-6)
            assert values["AlphaInputWithin" + key][1] == pytest.approx([0, 0], abs=1e-6)
            # from the second experience on
            assert values["AlphaInputBetween" + key][1] == pytest.approx([0], abs=1e-6)
            assert values["AlphaTaskChange" + key][1] == pytest.approx([0], abs=1e-6)
    # Avalanche's scheme: Name/train_phase/train_stream/<layer>/<kind>
    assert values and all(
        k.split("/")[1:3] == ["train_phase", "train_stream"] and len(k.split("/")) == 5
        for k in values
    )
    # x is the iteration count at the end of each experience
    assert values[f"AlphaDev/train_phase/train_stream/{layer}/sm"][0] == [3, 6]


def test_metric_sees_input_dependent_alphas():
    """With NeuroSync and a non-zero head the alphas depend on the input and the neuron:
    every diagnostic is positive, and inputs from two tasks (shifted by 1) differ more
    than two batches of one task."""
    torch.manual_seed(0)
    net = NeuMoSyncNetwork(MLP(12, (7, 5), 3))
    with torch.no_grad():
        net.neurosync.head.weight.normal_(0, 0.5)
    values, _ = _run(net, lr=1e-3)
    layer = net.layer_names[0]
    for kind in ("sm", "shift"):
        key = f"/train_phase/train_stream/{layer}/{kind}"
        assert values["AlphaStd" + key][1][-1] > 1e-3
        assert values["AlphaTaskChange" + key][1][-1] > 1e-4
        within = values["AlphaInputWithin" + key][1][-1]
        between = values["AlphaInputBetween" + key][1][-1]
        assert 0 < within < between


def test_metric_does_not_change_the_run():
    net_a = NeuMoSyncNetwork(MLP(12, (7, 5), 3))
    net_b = NeuMoSyncNetwork(MLP(12, (7, 5), 3))
    net_b.load_state_dict(net_a.state_dict())
    _run(net_a)
    torch.manual_seed(0)
    strategy = NeuMoSync(model=net_b, lr=1e-2, train_mb_size=16, evaluator=None)
    for exp in _stream().train_stream:
        strategy.train(exp)
    for (n, p), q in zip(net_a.named_parameters(), net_b.parameters()):
        assert torch.equal(p, q), n


def test_bad_samples_raise():
    with pytest.raises(ValueError):
        NeuMoSyncDiagnostics(samples=0)


def test_suite_measure_builds_the_metric_and_collects_its_values():
    (m,) = measures.build({"neumosync_diagnostics": {"samples": 16}}, None, {}, {"seed": 1})
    (metric,) = m.metrics()
    assert isinstance(metric, NeuMoSyncDiagnostics) and metric.samples == 16 and metric.seed == 1
    torch.manual_seed(0)
    strategy = NeuMoSync(
        model=MLP(12, (7, 5), 3), train_mb_size=16, evaluator=EvaluationPlugin(metric, loggers=[])
    )
    for exp in _stream().train_stream:
        strategy.train(exp)
    out = m.collect(strategy, {"status": "ok"})
    assert out and all(k.split("/")[0] in m.PREFIXES for k in out)
    assert any(k.startswith("AlphaInputBetween/") for k in out)
