"""Plasticity diagnostics on hand-computed examples and through the hidden-unit helper."""

from __future__ import annotations

import copy

import pytest
import torch

from avalanche_neumod import MLP
from avalanche_neumod.evaluation import (
    PlasticityMetric,
    diagnose,
    dormant_fraction,
    effective_rank,
    fork_strategy,
    grad_norm,
    mean_abs_weight,
    redo_scores,
)
from avalanche_neumod.models.units import UnitRecorder, hidden_units, recording_paused

A = pytest.approx


def test_redo_scores_by_hand():
    act = torch.tensor([[1.0, 0.0, 2.0, 0.1], [3.0, 0.0, -2.0, 0.1]])
    # E|h| = 2, 0, 2, 0.1; mean 1.025
    s = redo_scores(act)
    assert s.tolist() == [A(2 / 1.025), 0.0, A(2 / 1.025), A(0.1 / 1.025)]
    assert dormant_fraction(act, 0.1) == A(0.5)  # units 1 and 3
    assert dormant_fraction(act, 0.05) == A(0.25)
    assert dormant_fraction(act, 0.0) == A(0.25)
    # recorder layout (batch, copies, units, positions): unit 0 mean |h| 2, unit 1 silent
    act4 = torch.tensor([[[[1.0, 3.0], [0.0, 0.0]], [[1.0, -3.0], [0.0, 0.0]]]])
    assert redo_scores(act4).tolist() == [A(2.0), 0.0]
    assert dormant_fraction(torch.zeros(3, 5)) == 1.0


def test_rank_weight_and_grad_by_hand():
    assert effective_rank(torch.eye(3)) == A(3.0)
    assert effective_rank(torch.tensor([[3.0, 0.0], [0.0, 1.0]])) == A(1.754766, abs=1e-5)
    assert effective_rank(torch.ones(4, 3)) == A(1.0)
    assert effective_rank(torch.zeros(4, 3)) == 0.0
    assert mean_abs_weight([torch.tensor([1.0, -2.0]), torch.tensor([[3.0]])]) == A(2.0)
    assert grad_norm([torch.tensor([3.0]), None, torch.tensor([[4.0]])]) == A(5.0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: dormant_fraction(torch.ones(2, 3), tau=-0.1),
        lambda: redo_scores(torch.ones(2, 3, 4)),
        lambda: effective_rank(torch.ones(3)),
        lambda: mean_abs_weight([]),
        lambda: PlasticityMetric(tau=-1),
        lambda: PlasticityMetric(every=0),
        lambda: PlasticityMetric(samples=0),
    ],
)
def test_bad_arguments_raise(call):
    with pytest.raises(ValueError):
        call()


def test_diagnose_through_the_unit_helper():
    torch.manual_seed(0)
    model = MLP(6, (5, 4), 3)
    with torch.no_grad():
        model[1].weight[2].zero_()  # unit 2 of layer "1" never fires
        model[1].bias[2] = -1.0
    x = torch.randn(64, 6)
    d = diagnose(model, x, tau=0.0)
    assert d["dormant/1"] == A(1 / 5) and d["dormant/3"] >= 0
    assert d["dormant"] == A((d["dormant/1"] * 5 + d["dormant/3"] * 4) / 9)
    feats = torch.relu(model[3](torch.relu(model[1](x))))
    assert d["effective_rank"] == A(effective_rank(feats), rel=1e-5)
    ws = [model[1].weight, model[3].weight, model[5].weight]
    assert d["mean_abs_weight"] == A(mean_abs_weight(ws))


def test_recorders_pause_and_follow_a_deep_copy():
    model = MLP(6, (5,), 3)
    rec = UnitRecorder(hidden_units(model))
    with recording_paused():
        model(torch.randn(2, 6))
    assert rec.activity == {}
    model(torch.randn(2, 6))
    assert rec.activity["1"].shape == (2, 1, 5, 1)
    # copy model and recorder together: the copy's hooks write into the copied recorder
    m2, r2 = copy.deepcopy((model, rec))
    r2.activity.clear()
    old = rec.activity["1"].clone()
    m2(torch.randn(7, 6))
    assert r2.activity["1"].shape[0] == 7
    assert torch.equal(rec.activity["1"], old)


def test_fork_warns_about_closure_hooks():
    from avalanche_neumod import FastNaive

    model = MLP(6, (5,), 3)
    store = []
    model[1].register_forward_hook(lambda m, i, o: store.append(o))
    s = FastNaive(
        model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), evaluator=None
    )
    with pytest.warns(UserWarning, match="closure hook"):
        fork_strategy(s)


def test_metric_values(make_pmnist):
    from avalanche.training.plugins import EvaluationPlugin

    from avalanche_neumod import FastNaive

    bm = make_pmnist(n_experiences=2)
    torch.manual_seed(0)
    model = MLP(784, (16, 8), 10)
    metric = PlasticityMetric(tau=0.1, samples=100, every=5)
    ev = EvaluationPlugin(metric, loggers=[])
    s = FastNaive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
        train_mb_size=16,
        evaluator=ev,
    )
    for e in bm.train_stream:
        s.train(e)
    allm = ev.get_all_metrics()
    xs, vals = allm["DormantFraction/train_phase/train_stream"]
    # every 5 of 15 iterations per experience (5, 10, 15) plus the end of each experience
    assert xs == [5, 10, 15, 15, 20, 25, 30, 30]
    assert all(0 <= v <= 1 for v in vals)
    assert "DormantFraction/train_phase/train_stream/1" in allm
    assert "GradNorm/train_phase/train_stream" in allm
    rank = allm["EffectiveRank/train_phase/train_stream"][1]
    assert all(1 <= r <= 8 for r in rank)
    assert metric.last["mean_abs_weight"] == A(
        mean_abs_weight([model[1].weight, model[3].weight, model[5].weight])
    )


def test_evaluations_restore_each_module_mode_and_pause_recorders():
    from avalanche_neumod import ExperienceTensors
    from avalanche_neumod.evaluation import SubsetEvaluator

    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(6, 5),
        torch.nn.BatchNorm1d(5),
        torch.nn.ReLU(),
        torch.nn.Linear(5, 3),
    )
    model.train()
    model[2].eval()  # a frozen normalisation layer inside a training model
    rec = UnitRecorder(hidden_units(model))
    running = model[2].running_mean.clone()
    data = ExperienceTensors(torch.randn(40, 6), torch.randint(0, 3, (40,)), 0)
    ev = SubsetEvaluator({0: data}, batch_size=16)
    acc = ev.evaluate(model, [0])[0]
    assert [m.training for m in model] == [True, True, False, True, True]
    assert rec.activity == {}  # paused
    assert torch.equal(model[2].running_mean, running)
    model.eval()
    with torch.no_grad():
        expected = float((model(data.x).argmax(1) == data.y).float().mean())
    assert acc == A(expected)
    rec.activity.clear()  # the plain forward above was recorded
    d = diagnose(model, data.x)
    assert 0 <= d["dormant"] <= 1 and rec.activity == {}


def _modulated_neumosync():
    """A NeuMoSyncNetwork with non-trivial alphas (random NeuroSync weights)."""
    from avalanche_neumod.models.neumosync import NeuMoSyncNetwork

    torch.manual_seed(0)
    net = NeuMoSyncNetwork(MLP(784, (16,), 10))
    with torch.no_grad():
        for p in net.neurosync.parameters():
            p.normal_(0.0, 0.5)
    return net


def test_diagnose_reads_neumosyncs_inference_network(mnist_small):
    # regression: read_units(NeuMoSyncNetwork) raised UnsupportedModelError
    import torch.nn.functional as F

    net = _modulated_neumosync()
    x = mnist_small[1][0][:64]
    d = diagnose(net, x, tau=0.5)
    # by hand: the InferenceNetwork's hidden activity h = relu(gain * (W_inf x + b_inf) + shift)
    net.eval()
    with torch.no_grad():
        alphas = net.alphas(x)
        w = net.inference_weights(alphas)
        z = F.linear(x.flatten(1), w["1.weight"], w["1.bias"])
        a = alphas[:16]
        h = torch.relu(a[:, 2] * z + a[:, 3])
    assert (a[:, 2] - 1).abs().max() > 0.05  # the modulation is not the identity
    assert d["dormant/1"] == A(dormant_fraction(h, 0.5))
    assert d["effective_rank"] == A(effective_rank(h), rel=1e-5)
    assert d["effective_rank"] != A(diagnose(net.main, x)["effective_rank"], rel=1e-3)
    # the weights are the MainNetwork's theta
    assert d["mean_abs_weight"] == A(mean_abs_weight([net.main[1].weight, net.main[3].weight]))
    assert set(d) == {"dormant/1", "dormant", "effective_rank", "mean_abs_weight"}


def test_metric_on_the_neumosync_strategy(make_pmnist):
    # regression: PlasticityMetric failed after NeuMoSync's first experience
    from avalanche.training.plugins import EvaluationPlugin

    from avalanche_neumod.training.neumosync import NeuMoSync

    bm = make_pmnist(n_experiences=2, n_train=64)
    torch.manual_seed(0)
    metric = PlasticityMetric(samples=50, every=2)
    ev = EvaluationPlugin(metric, loggers=[])
    s = NeuMoSync(model=MLP(784, (16,), 10), train_mb_size=16, evaluator=ev)
    for e in bm.train_stream:
        s.train(e)
    xs, vals = ev.get_all_metrics()["DormantFraction/train_phase/train_stream/1"]
    assert xs == [2, 4, 4, 6, 8, 8]
    assert all(0 <= v <= 1 for v in vals)
    assert "GradNorm/train_phase/train_stream" in ev.get_all_metrics()
    net = s.model
    assert metric.last["mean_abs_weight"] == A(
        mean_abs_weight([net.main[1].weight, net.main[3].weight])
    )
    assert 1 <= metric.last["effective_rank"] <= 16
