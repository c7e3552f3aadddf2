"""NeuMoSync strategy (training) on small real Permuted / Random-Label MNIST."""

from __future__ import annotations

import json

import pytest
import torch
from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
from avalanche.training.plugins import EvaluationPlugin

from avalanche_neumod.benchmarks.tensor_data import ExperienceTensors, tensor_benchmark
from avalanche_neumod.models import MLP, ConvNet
from avalanche_neumod.models.neumosync import NeuMoSyncNetwork
from avalanche_neumod.training.neumosync import NeuMoSync

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: one intra-op thread


@pytest.fixture(scope="module")
def mnist(mnist_first):
    return mnist_first(True, 1600)


def _permuted(mnist, n_exp=2, n_train=600, n_test=400):
    x, y = mnist
    g = torch.Generator().manual_seed(0)
    train, test = [], []
    for e in range(n_exp):
        perm = torch.arange(784) if e == 0 else torch.randperm(784, generator=g)
        xp = x.flatten(1)[:, perm].view(-1, 1, 28, 28)
        train.append(ExperienceTensors(xp[:n_train], y[:n_train], 0))
        test.append(
            ExperienceTensors(xp[n_train : n_train + n_test], y[n_train : n_train + n_test], 0)
        )
    return tensor_benchmark(train, test)


def _random_label(mnist, n_exp=2, n=128):
    x, y = mnist
    g = torch.Generator().manual_seed(1)
    exps = [
        ExperienceTensors(x[:n], y[:n][torch.randperm(n, generator=g)], 0) for _ in range(n_exp)
    ]
    return tensor_benchmark(exps, exps)  # memorisation: evaluated on the same images


def _evaluator():
    return EvaluationPlugin(
        accuracy_metrics(experience=True, stream=True), loss_metrics(epoch=True), loggers=[]
    )


def _acc(results: dict, exp: int) -> float:
    return next(
        v
        for k, v in results.items()
        if k.startswith("Top1_Acc_Exp") and k.endswith(f"Exp{exp:03d}")
    )


MODELS = {
    "mlp": lambda: MLP(784, (100, 100), 10),
    "convnet": lambda: ConvNet(in_channels=1, num_classes=10, input_size=28, channels=8, hidden=64),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_trains_on_permuted_mnist(mnist, name):
    torch.manual_seed(0)
    bm = _permuted(mnist)
    strategy = NeuMoSync(
        model=MODELS[name](), train_mb_size=16, evaluator=_evaluator(), alpha_record_every=10
    )
    just_trained = []
    for exp in bm.train_stream:
        strategy.train(exp)
        res = strategy.eval(bm.test_stream)
        just_trained.append(_acc(res, exp.current_experience))
    # chance is 0.1. The ConvNet learns the permuted (non-image) second task slowly: over
    # seeds 0-4 it scores 0.63-0.70 then 0.16-0.28 here (Naive with the same Adam:
    # 0.31-0.44 then 0.19-0.26), so it is held to a mean well above chance.
    if name == "mlp":
        assert min(just_trained) > 0.5
    else:
        assert sum(just_trained) / len(just_trained) > 0.3 and min(just_trained) > 0.12
    hist = strategy.alpha_history
    json.dumps(hist)  # JSON-serialisable for the report
    assert [e["experience"] for e in hist["experiences"]] == [0, 1]
    iters = 2 * (600 // 16 + 1)
    assert [r["iteration"] for r in hist["iterations"]] == list(range(0, iters, 10))
    last = hist["experiences"][-1]["layers"]
    assert set(last) == set(strategy.model.layer_names)
    assert set(last[strategy.model.layer_names[0]]) == {"sm", "wc", "gain", "shift"}
    # the alphas moved away from their initial values (the modulation is learned)
    first_layer = last[strategy.model.layer_names[0]]
    assert abs(first_layer["sm"][0] - 1.0) > 1e-3 and first_layer["sm"][1] > 0


@pytest.mark.parametrize("name", list(MODELS))
def test_memorises_random_label_mnist(mnist, name):
    torch.manual_seed(0)
    bm = _random_label(mnist)
    strategy = NeuMoSync(
        model=MODELS[name](), train_mb_size=16, train_epochs=10, evaluator=_evaluator()
    )
    accs = []
    # The ConvNet is checked on its first experience only: on the second, with these
    # settings, the learned shifts silence its units (docs/neumosync.md, open issues).
    for exp in bm.train_stream if name == "mlp" else bm.train_stream[:1]:
        strategy.train(exp)
        accs.append(
            _acc(strategy.eval([bm.test_stream[exp.current_experience]]), exp.current_experience)
        )
    assert min(accs) > 0.3  # chance is 0.1


@pytest.mark.parametrize(
    "flag", ["consolidation", "plasticity_modulation", "activity_modulation", "neurosync"]
)
def test_ablations_train(mnist, flag):
    torch.manual_seed(0)
    bm = _permuted(mnist, n_exp=1, n_train=400, n_test=300)
    strategy = NeuMoSync(model=MLP(), train_mb_size=16, evaluator=_evaluator(), **{flag: False})
    strategy.train(bm.train_stream[0])
    assert _acc(strategy.eval(bm.test_stream), 0) > 0.5


def test_evaluation_does_not_update_statistics_or_consolidation(mnist):
    torch.manual_seed(0)
    bm = _permuted(mnist, n_exp=1, n_train=64, n_test=64)
    strategy = NeuMoSync(model=MLP(), train_mb_size=16, evaluator=_evaluator())
    net = strategy.model
    strategy.train(bm.train_stream[0])
    stats = net.features.activity.clone()
    phi = net.phi(0)[0].clone()
    assert bool(net.features.activity_ready)
    strategy.eval(bm.test_stream)
    assert torch.equal(net.features.activity, stats)
    assert torch.equal(net.phi(0)[0], phi)
    # training does move them
    strategy.train(bm.train_stream[0])
    assert not torch.equal(net.features.activity, stats)
    assert not torch.equal(net.phi(0)[0], phi)


def test_one_optimizer_covers_theta_features_and_neurosync():
    strategy = NeuMoSync(model=MLP(), train_mb_size=16, evaluator=None)
    in_opt = {id(p) for g in strategy.optimizer.param_groups for p in g["params"]}
    assert {id(p) for p in strategy.model.parameters()} <= in_opt
    assert not any(id(b) in in_opt for b in strategy.model.buffers())


def test_same_seed_same_results(mnist):
    bm = _permuted(mnist, n_exp=1, n_train=96, n_test=64)
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        strategy = NeuMoSync(model=MLP(), train_mb_size=16, evaluator=_evaluator())
        strategy.train(bm.train_stream[0])
        outs.append((strategy.eval(bm.test_stream), strategy.alpha_history))
    assert outs[0][0] == outs[1][0]
    assert outs[0][1] == outs[1][1]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": 0.0},
        {"alpha_record_every": -1},
        {"ema_decay": 1.5},
        {"d_model": -4},
        {"context": "pixel"},
    ],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        NeuMoSync(model=MLP(), **kwargs)


def test_prebuilt_network_with_strategy_level_network_arguments_raises():
    net = NeuMoSyncNetwork(MLP(), ema_decay=0.9)
    NeuMoSync(model=net, evaluator=None)  # accepted as built
    with pytest.raises(ValueError, match="ema_decay"):
        NeuMoSync(model=net, ema_decay=0.5, evaluator=None)


def test_strategy_takes_every_network_argument_by_name():
    """The network's keyword-only arguments are the strategy's: named in its signature
    (what help and the suite's argument check read) and forwarded to the network."""
    import inspect

    strategy_params = inspect.signature(NeuMoSync).parameters
    net_params = inspect.signature(NeuMoSyncNetwork.__init__).parameters
    for name, p in net_params.items():
        if p.kind is inspect.Parameter.KEYWORD_ONLY:
            assert strategy_params[name].default == p.default, name
    strategy = NeuMoSync(
        model=MLP(),
        ema_decay=0.5,
        consolidation=False,
        alpha_scale=(1.0, 1.0, 1.0, 0.1),
        d_model=8,
        num_heads=2,
        head_bias="layer",
        train_mb_size=8,
        evaluator=None,
    )
    net = strategy.model
    assert (net.ema_decay, net.consolidation, net.alpha_scales) == (0.5, False, (1, 1, 1, 0.1))
    assert net.head_bias == "layer" and net.layer_bias is not None
    assert strategy.train_mb_size == 8
    with pytest.raises(TypeError, match="consolidaton"):  # a typo reaches no one silently
        NeuMoSync(model=MLP(), consolidaton=False, evaluator=None)


@pytest.mark.parametrize("context", ["batch", "sample"])
def test_alpha_history_per_experience_is_the_mean_over_its_iterations(mnist, context):
    """Recorded every iteration, the per-experience summary is the mean and std over all
    of the experience's iterations (and samples) and each layer's neurons."""
    torch.manual_seed(0)
    bm = _permuted(mnist, n_exp=1, n_train=64, n_test=16)
    strategy = NeuMoSync(
        model=MLP(784, (100, 100), 10),
        context=context,
        train_mb_size=16,
        evaluator=None,
        alpha_record_every=1,
    )
    seen = []
    original = strategy._record_alphas

    def spy(net):
        seen.append(net.last_alphas.detach().reshape(-1, net.n_neurons, 4).double().clone())
        original(net)

    strategy._record_alphas = spy
    strategy.train(bm.train_stream[0])
    a = torch.cat(seen)  # (iterations x samples, N, 4)
    summary = strategy.alpha_history["experiences"][0]["layers"]
    for layer in strategy.model.layers:
        part = a[:, layer.offset : layer.offset + layer.n].reshape(-1, 4)
        for j, kind in enumerate(("sm", "wc", "gain", "shift")):
            mean, std = summary[layer.name][kind]
            assert mean == pytest.approx(part[:, j].mean().item(), abs=1e-9)
            assert std == pytest.approx(part[:, j].std(unbiased=False).item(), abs=1e-6)


# -------------------------------------------------------------------------- variants
def test_neurosync_lr_gives_the_modulator_its_own_group(mnist):
    torch.manual_seed(0)
    bm = _permuted(mnist, n_exp=1, n_train=64, n_test=16)
    strategy = NeuMoSync(model=MLP(), lr=1e-3, neurosync_lr=1e-4, train_mb_size=16, evaluator=None)
    net = strategy.model
    strategy.train(bm.train_stream[0])  # Avalanche's make_optimizer keeps the groups
    groups = strategy.optimizer.param_groups
    assert [g["lr"] for g in groups] == [1e-3, 1e-4]
    theta = {id(p) for p in net.main.parameters()}
    assert {id(p) for p in groups[0]["params"]} == theta
    rest = {id(p) for p in net.parameters()} - theta
    assert {id(p) for p in groups[1]["params"]} == rest
    assert id(net.neurosync.head.weight) in rest
    # a given optimizer (a suite's) keeps its kind and settings, theta keeps its lr
    model = MLP()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    strategy = NeuMoSync(
        model=model, neurosync_lr=1e-4, optimizer=sgd, train_mb_size=16, evaluator=None
    )
    strategy.train(bm.train_stream[0])
    groups = strategy.optimizer.param_groups
    assert isinstance(strategy.optimizer, torch.optim.SGD)
    assert [(g["lr"], g["momentum"]) for g in groups] == [(0.1, 0.9), (1e-4, 0.9)]
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.parameters()}
    assert id(strategy.model.neurosync.head.weight) in {id(p) for p in groups[1]["params"]}


def _lookahead_by_hand(net: NeuMoSyncNetwork, x, y, eta: float, second: bool):
    """(|A| L_A(theta) + |B| L_B(theta')) / |A+B|, theta' = theta - eta alpha_SM dL_A/dw_inf,
    written with an explicit ReLU MLP."""
    import torch.nn.functional as F

    half = len(x) // 2
    alphas = net.alphas(x)

    def mlp(h, thetas):
        h = h.flatten(1)
        for layer in net.layers:
            a = alphas[layer.offset : layer.offset + layer.n]
            pw, pb = net.phi(layer.index)
            tw, tb = thetas[layer.name]
            w = a[:, 0, None] * tw + a[:, 1, None] * pw
            b = a[:, 0] * tb + a[:, 1] * pb
            z = h @ w.T + b
            h = torch.relu(a[:, 2] * z + a[:, 3]) if layer.modulated else z
        return h

    thetas = {la.name: (la.module.weight, la.module.bias) for la in net.layers}
    # gradient of L_A with respect to the mixed weights: through w = SM theta + WC phi
    w_leaves = {}
    for layer in net.layers:
        a = alphas[layer.offset : layer.offset + layer.n]
        pw, pb = net.phi(layer.index)
        tw, tb = thetas[layer.name]
        w_leaves[layer.name] = (
            a[:, 0, None] * tw + a[:, 1, None] * pw,
            a[:, 0] * tb + a[:, 1] * pb,
        )

    def mlp_w(h, ws):
        h = h.flatten(1)
        for layer in net.layers:
            a = alphas[layer.offset : layer.offset + layer.n]
            w, b = ws[layer.name]
            z = h @ w.T + b
            h = torch.relu(a[:, 2] * z + a[:, 3]) if layer.modulated else z
        return h

    loss_a = F.cross_entropy(mlp_w(x[:half], w_leaves), y[:half])
    flat = [t for pair in w_leaves.values() for t in pair]
    grads = torch.autograd.grad(loss_a, flat, retain_graph=True, create_graph=second)
    stepped, k = {}, 0
    for layer in net.layers:
        sm = alphas[layer.offset : layer.offset + layer.n, 0]
        tw, tb = thetas[layer.name]
        stepped[layer.name] = (tw - eta * sm[:, None] * grads[k], tb - eta * sm * grads[k + 1])
        k += 2
    out_b = mlp(x[half:], stepped)
    loss_b = F.cross_entropy(out_b, y[half:])
    return (half * loss_a + (len(x) - half) * loss_b) / len(x)


@pytest.mark.parametrize("order", [1, 2])
def test_lookahead_objective_matches_its_definition(order):
    torch.manual_seed(0)
    strategy = NeuMoSync(
        model=MLP(12, (7, 5), 3),
        objective="lookahead",
        lookahead_lr=0.5,
        lookahead_order=order,
        evaluator=None,
    )
    net = strategy.model
    with torch.no_grad():
        net.neurosync.head.weight.normal_(0, 0.5)
        for layer in net.layers:  # phi != theta
            for t in net.phi(layer.index):
                t.add_(0.2 * torch.randn_like(t))
    x, y = torch.randn(9, 12), torch.randint(0, 3, (9,))
    strategy.mbatch = [x, y, torch.zeros(9, dtype=torch.long)]
    strategy.is_training = True
    net.train()
    out = strategy.forward()
    assert out.shape == (9, 3)
    loss = strategy.criterion()
    params = [net.neurosync.head.weight, net.main[1].weight]
    got = torch.autograd.grad(loss, params)
    ref_loss = _lookahead_by_hand(net, x, y, 0.5, second=order == 2)
    torch.testing.assert_close(loss, ref_loss)
    for g, r in zip(got, torch.autograd.grad(ref_loss, params)):
        torch.testing.assert_close(g, r)
    strategy.mbatch = [x[:4], y[:4], torch.zeros(4, dtype=torch.long)]
    strategy.is_training = False
    assert strategy.forward().shape == (4, 3)  # evaluation: the plain InferenceNetwork


def test_lookahead_first_and_second_order_differ_in_gradient_not_in_loss():
    grads, losses = [], []
    for order in (1, 2):
        torch.manual_seed(0)
        strategy = NeuMoSync(
            model=MLP(12, (7, 5), 3), objective="lookahead", lookahead_order=order, evaluator=None
        )
        with torch.no_grad():
            strategy.model.neurosync.head.weight.normal_(0, 0.5)
        x, y = torch.randn(8, 12), torch.randint(0, 3, (8,))
        strategy.mbatch = [x, y, torch.zeros(8, dtype=torch.long)]
        strategy.is_training = True
        strategy.forward()
        loss = strategy.criterion()
        losses.append(loss.detach())
        grads.append(torch.autograd.grad(loss, strategy.model.neurosync.head.weight)[0])
    torch.testing.assert_close(losses[0], losses[1])
    assert not torch.allclose(grads[0], grads[1])


def test_lookahead_trains_on_permuted_mnist(mnist):
    torch.manual_seed(0)
    bm = _permuted(mnist, n_exp=1, n_train=400, n_test=300)
    strategy = NeuMoSync(
        model=MLP(), objective="lookahead", train_mb_size=16, evaluator=_evaluator()
    )
    strategy.train(bm.train_stream[0])
    assert _acc(strategy.eval(bm.test_stream), 0) > 0.5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"neurosync_lr": 0.0},
        {"objective": "maml"},
        {"lookahead_lr": 0.0},
        {"lookahead_order": 3},
        {"objective": "lookahead", "context": "sample"},
    ],
)
def test_bad_variant_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        NeuMoSync(model=MLP(), **kwargs)


def test_unknown_objective_lists_valid_ones():
    with pytest.raises(ValueError, match="lookahead"):
        NeuMoSync(model=MLP(), objective="maml")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_convnet_learns_every_random_label_task(mnist, seed):
    """Issue 13: with DESIGN.md's unbounded alphas (``alpha_scale=1.0``, the default until
    the design study) the ConvNet's second task stays at the majority-class rate (0.10-0.16
    on seeds 1-3: a layer's ReLUs die at the task switch). With the default, bounded
    scales every task of 3 is learned: measured 0.45-0.86 per task on seeds 1-3
    (docs/neumosync.md); held to > 0.25 each (a constant output scores <= 0.16)."""
    x, y = mnist
    g = torch.Generator().manual_seed(1 + seed)
    exps = [
        ExperienceTensors(x[:128], y[:128][torch.randperm(128, generator=g)], 0) for _ in range(3)
    ]
    bm = tensor_benchmark(exps, exps)
    torch.manual_seed(seed)
    strategy = NeuMoSync(
        model=MODELS["convnet"](),
        train_mb_size=16,
        train_epochs=10,
        evaluator=_evaluator(),
        alpha_record_every=0,
    )
    accs = []
    for exp in bm.train_stream:
        strategy.train(exp)
        k = exp.current_experience
        accs.append(_acc(strategy.eval([bm.test_stream[k]]), k))
    assert min(accs) > 0.25, accs


# ---------------------------------------------------------------- reporting hooks
def _tiny_experience(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 20, generator=g), torch.randint(0, 3, (n,), generator=g)
    return tensor_benchmark([ExperienceTensors(x, y, 0)], [ExperienceTensors(x, y, 0)])


def test_mechanism_hooks_report_the_alphas_and_their_saturation():
    """``mechanism_history`` is the alpha history; ``mechanism_activity`` the fraction of
    alphas within 1% of their bound, per kind, over the kinds that can move."""
    torch.manual_seed(0)
    net = NeuMoSyncNetwork(MLP(20, (9, 7), 3), activity_modulation=False)
    with torch.no_grad():  # r = (+big, 0, 0, 0): SM at its upper bound, WC neutral
        net.neurosync.head.bias.copy_(torch.tensor([50.0, 0.0, 0.0, 0.0]))
    net.neurosync.head.requires_grad_(False)
    strategy = NeuMoSync(model=net, train_mb_size=16, evaluator=None, alpha_record_every=1)
    assert strategy.mechanism_history() == {}
    strategy.train(_tiny_experience().train_stream[0])
    history = strategy.mechanism_history()
    assert history == {"alphas": strategy.alpha_history}
    assert len(history["alphas"]["iterations"]) == 3
    act = strategy.mechanism_activity(strategy)
    assert act["alpha_saturation_sm"] == 1.0
    assert act["alpha_saturation_wc"] == 0.0
    assert all(
        act[f"alpha_saturation_{k}"] != act[f"alpha_saturation_{k}"] for k in ("gain", "shift")
    )
    json.dumps(history)
