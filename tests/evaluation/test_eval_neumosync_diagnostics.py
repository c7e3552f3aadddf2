"""NeuMoSync alpha diagnostics: spread, task change, input sensitivity (pure functions + metric)."""

from __future__ import annotations

import pytest
import torch
from avalanche.training.plugins import EvaluationPlugin

from avalanche_neumod import ExperienceTensors, tensor_benchmark
from avalanche_neumod.evaluation.neumosync_diagnostics import (
    NeuMoSyncDiagnostics,
    alpha_difference,
    alpha_saturation,
    alpha_scales,
    alpha_spread,
    history_spread,
    layer_slices,
    logit_scale,
    range_used,
    task_switch_response,
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


# ----------------------------------------------------------------- alpha histories


def _history(experiences: bool = True) -> dict:
    """Two tasks of 100 iterations, a record every 10 (the layout of ``alpha_history``).

    Hidden layer "1": SM 1.0 at 0, 1.49 at 10 and 20 (0.01 short of 1 % of the cap:
    not saturated), 1.5 from 30 to 90 (7 records at the upper cap), 0.5 at 100 and 110
    (2 at the lower cap), 1.496 from 120 on (8 within 1 % of the upper cap); WC 0.25
    (std 0.05) throughout; gain 1.2 (std 0.02); shift -0.1, the lower cap of a = 0.1.
    Output layer "5": SM 1.25, WC -0.5 (lower cap); gain and shift off (neutral, std 0).
    """
    recs = []
    for it in range(0, 200, 10):
        sm = (
            1.0 if it == 0 else 1.49 if it < 30 else 1.5 if it < 100 else 0.5 if it < 120 else 1.496
        )
        recs.append(
            {
                "iteration": it,
                "experience": it // 100,
                "layers": {
                    "1": {
                        "sm": [sm, 0.0],
                        "wc": [0.25, 0.05],
                        "gain": [1.2, 0.02],
                        "shift": [-0.1, 0.0],
                    },
                    "5": {
                        "sm": [1.25, 0.01],
                        "wc": [-0.5, 0.0],
                        "gain": [1.0, 0.0],
                        "shift": [0.0, 0.0],
                    },
                },
            }
        )
    h = {"layers": ["1", "5"], "iterations": recs[::-1], "experiences": []}  # any order
    if experiences:
        h["experiences"] = [
            {"experience": 0, "iterations": 100},
            {"experience": 1, "iterations": 200},
        ]
    return h


SCALES = {"sm": 0.5, "wc": 0.5, "gain": 0.5, "shift": 0.1}


def test_alpha_scales_read_the_networks_argument():
    assert alpha_scales((0.5, 0.5, 0.5, 0.1)) == SCALES
    assert alpha_scales(1.0) == {k: 1.0 for k in SCALES}
    with pytest.raises(ValueError):
        alpha_scales((0.5, 0.5))


def test_saturation_of_a_known_history():
    per_layer = {"1": SCALES, "5": {**SCALES, "wc": 0.0}}  # layer 5's WC: no fixed cap
    assert alpha_saturation(_history(), per_layer)["5"]["wc"] is None
    assert alpha_saturation(_history(), per_layer)["1"] == alpha_saturation(_history(), SCALES)["1"]
    sat = alpha_saturation(_history(), SCALES)
    assert sat["1"]["sm"] == pytest.approx({"upper": 15 / 20, "lower": 2 / 20})
    assert sat["1"]["wc"] == {"upper": 0.0, "lower": 0.0}
    assert sat["1"]["gain"] == {"upper": 0.0, "lower": 0.0}  # 1.2 is 40 % of the range
    assert sat["1"]["shift"] == {"upper": 0.0, "lower": 1.0}
    assert sat["5"]["wc"] == {"upper": 0.0, "lower": 1.0}
    assert sat["5"]["gain"] is None and sat["5"]["shift"] is None  # off
    # a wider tolerance counts 1.49 too; a = 1 moves the caps away
    assert alpha_saturation(_history(), SCALES, tol=0.05)["1"]["sm"]["upper"] == 17 / 20
    assert alpha_saturation(_history(), {**SCALES, "sm": 1.0})["1"]["sm"] == {
        "upper": 0.0,
        "lower": 0.0,
    }
    assert alpha_saturation({"iterations": []}, SCALES) == {}


def test_spread_and_range_of_a_known_history():
    sp = history_spread(_history())
    assert sp["1"]["wc"] == pytest.approx(0.05 / 0.25)
    assert sp["1"]["gain"] == pytest.approx(0.02 / 0.2)
    assert sp["1"]["sm"] == 0.0 and sp["1"]["shift"] == 0.0  # one value per layer
    assert sp["5"]["sm"] == pytest.approx(0.01 / 0.25)
    assert sp["5"]["gain"] is None
    used = range_used(_history(), SCALES)
    assert used["1"]["wc"] == pytest.approx(0.5)
    assert used["1"]["gain"] == pytest.approx(0.4)
    assert used["1"]["shift"] == pytest.approx(1.0)
    assert used["1"]["sm"] == pytest.approx((0 + 2 * 0.98 + 7 * 1 + 2 * 1 + 8 * 0.992) / 20)
    assert used["5"]["shift"] is None


def test_task_switch_response_of_a_known_history():
    for h in (_history(), _history(experiences=False)):  # spans from the records alone too
        tasks = task_switch_response(h)
        assert [t["experience"] for t in tasks] == [0, 1]
        sm = [t["layers"]["1"]["sm"] for t in tasks]
        assert sm[0] == pytest.approx({"early": 1.0, "late": 1.5})
        assert sm[1] == pytest.approx({"early": 0.5, "late": 1.496})
        assert tasks[1]["layers"]["5"]["gain"] == {"early": None, "late": None}  # off
    # the first and last 20 %: two records each
    tasks = task_switch_response(_history(), fraction=0.2)
    assert tasks[0]["layers"]["1"]["sm"] == pytest.approx({"early": 1.245, "late": 1.5})
    assert tasks[1]["layers"]["1"]["sm"] == pytest.approx({"early": 0.5, "late": 1.496})
    # a window with no record reads None (the last 5 % of a task: iterations 95-99)
    assert task_switch_response(_history(), fraction=0.05)[0]["layers"]["1"]["sm"] == {
        "early": 1.0,
        "late": None,
    }
    with pytest.raises(ValueError):
        task_switch_response(_history(), fraction=0.0)


def test_logit_scale_of_a_known_batch():
    z = torch.tensor([[1.0, -3.0], [2.0, 2.0]])
    assert logit_scale(z) == pytest.approx({"abs": 2.0, "std": float(z.std(unbiased=False))})


def test_metric_logit_scale_of_a_known_multiplier():
    """Bias-free ReLU MLP, no consolidation, constant alpha_SM = 1 + 0.5 tanh(0.5) and the
    other alphas neutral: every layer's output is alpha_SM times the MainNetwork's, so the
    InferenceNetwork's logits are alpha_SM^3 times theta's (positive homogeneity)."""
    net = NeuMoSyncNetwork(MLP(12, (7, 5), 3, bias=False), neurosync=False, consolidation=False)
    with torch.no_grad():
        net.neurosync.head.bias.copy_(torch.tensor([0.5, 0.0, 0.0, 0.0]))
    net.neurosync.head.requires_grad_(False)
    values, history = _run(net)
    sm = 1 + 0.5 * torch.tanh(torch.tensor(0.5)).item()
    for stat in ("abs", "std"):
        inf = values[f"LogitScale/train_phase/train_stream/inference/{stat}"][1]
        main = values[f"LogitScale/train_phase/train_stream/main/{stat}"][1]
        assert len(inf) == len(main) == 2 and min(main) > 0
        assert [i / m for i, m in zip(inf, main)] == pytest.approx([sm**3] * 2, rel=1e-5)
    for layer in net.layer_names:  # the caps: a per kind; the output layer's gain, shift 0
        scales = [values[f"AlphaScale/train_phase/train_stream/{layer}/{k}"][1] for k in SCALES]
        out = layer == net.layer_names[-1]
        want = [0.5, 0.0, 0.0 if out else 0.5, 0.0 if out else 0.1]  # no consolidation: WC 0
        assert scales == [[pytest.approx(a)] * 2 for a in want]
    last = values["LogitScale/train_phase/train_stream/inference/abs"][1][-1]
    assert history[-1]["LogitScale"]["inference"]["abs"] == pytest.approx(last)
