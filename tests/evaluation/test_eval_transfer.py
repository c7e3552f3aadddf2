"""Transfer metrics on hand-computed arrays; probes and forks on real runs."""

from __future__ import annotations

import copy
import json
import warnings

import pytest
import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import EWC, Naive
from avalanche.training.plugins import EvaluationPlugin

from avalanche_neumod import MLP, FastNaive
from avalanche_neumod.evaluation import (
    KnowledgeTransferMetric,
    StabilityGapMetric,
    average_final_accuracy,
    bkt,
    bkt_mean,
    fkt,
    fkt_mean,
    fork_strategy,
    lca_backward,
    lca_forward,
    lca_zero,
    transfer_table,
)
from avalanche_neumod.evaluation.probes import truncated_experience
from avalanche_neumod.evaluation.transfer import metric_name
from avalanche_neumod.training import FastDataPlugin

A = pytest.approx
# T = 3, beta = 2
A_MAIN = [[0.1, 0.2, 0.3], [0.2, 0.4, 0.6], [0.3, 0.5, 0.7]]  # row 0 is not used
A_FINAL = [[0.5, 0.6, 0.7], [0.4, 0.5, 0.9], [None, None, None]]
A_REF = [[0.1, 0.3, 0.5], [0.1, 0.2, 0.3], [0.2, 0.2, 0.2]]


def test_formulas_by_hand():
    assert lca_forward(A_MAIN) == A(2.7 / 6)  # rows 1, 2
    assert lca_backward(A_FINAL) == A(3.6 / 6)  # rows 0, 1
    assert lca_zero(A_REF) == A(2.1 / 9)
    assert lca_zero(A_REF, "forward") == A(1.2 / 6)
    assert lca_zero(A_REF, "backward") == A(1.5 / 6)
    assert [fkt(A_MAIN, A_REF, b) for b in range(3)] == [A(0.1), A(0.25), A(0.4)]
    assert [bkt(A_FINAL, A_REF, b) for b in range(3)] == [A(0.35), A(0.3), A(0.4)]
    assert fkt_mean(A_MAIN, A_REF) == A(0.25)
    assert bkt_mean(A_FINAL, A_REF) == A(0.35)
    assert average_final_accuracy([0.7, 0.9, 0.8]) == A(0.8)
    t = transfer_table(A_MAIN, A_FINAL, A_REF, [0.7, 0.9, 0.8])
    assert t["FKT_half"] == A(0.25) and t["FKT_beta"] == A(0.4)
    assert t["BKT_half"] == A(0.3) and t["BKT_beta"] == A(0.4)
    assert t["AvgFinalAcc"] == A(0.8)
    # the identities
    assert t["LCA_F"] == A(t["LCA_0_F"] + t["FKT_mean"])
    assert t["LCA_B"] == A(t["LCA_0_B"] + t["BKT_mean"])


@pytest.mark.parametrize(
    "call",
    [
        lambda: lca_forward([[0.1, 0.2]]),  # T = 1
        lambda: lca_forward([[0.1], [0.2]]),  # beta = 0
        lambda: fkt(A_MAIN, A_REF, 3),
        lambda: bkt(A_FINAL, [[0.1, 0.2], [0.1, 0.2]], 0),  # shapes differ
        lambda: lca_backward([[None, 0.1, 0.2], [0.1, 0.2, 0.3], [0, 0, 0]]),
        lambda: lca_zero(A_REF, "sideways"),
        lambda: average_final_accuracy([]),
    ],
)
def test_bad_arrays_raise(call):
    with pytest.raises(ValueError):
        call()


def test_metric_bad_arguments(make_pmnist):
    bm = make_pmnist()
    for kwargs in ({"beta": 0}, {"beta": 2, "reference": "last"}, {"beta": 2, "eval_samples": 0}):
        with pytest.raises(ValueError):
            KnowledgeTransferMetric(bm.test_stream, **kwargs)
    with pytest.raises(ValueError):
        KnowledgeTransferMetric(bm.test_stream[:1], beta=2)


def _strategy(kind, metrics, seed=0, others=()):
    """``kind`` (fast, naive, ewc) with ``metrics`` (and Avalanche's ``others``) in its
    EvaluationPlugin."""
    torch.manual_seed(seed)
    model = MLP(784, (32,), 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No loggers specified")
        ev = EvaluationPlugin(*others, *metrics, loggers=[])
    kw = dict(model=model, optimizer=opt, train_mb_size=16, plugins=[], evaluator=ev)
    if kind == "fast":
        return FastNaive(**kw)
    crit = torch.nn.CrossEntropyLoss()
    kw["plugins"] = [FastDataPlugin()]  # Avalanche's strategies, sliced batches
    if kind == "naive":
        return Naive(criterion=crit, **kw)
    return EWC(criterion=crit, ewc_lambda=100.0, **kw)


def _train(s, bm):
    for exp in bm.train_stream:
        s.train(exp)


@pytest.mark.parametrize("reference", ["init", "first"])
def test_identities_on_real_runs(make_pmnist, reference):
    bm = make_pmnist(n_train=160, n_test=100)
    kt = KnowledgeTransferMetric(bm.test_stream, beta=6, eval_samples=100, reference=reference)
    tr = StabilityGapMetric(bm.test_stream, samples_per_exp=100)  # same subsets (seed 0)
    s = _strategy("fast", [kt, tr])
    _train(s, bm)
    t = kt.scores()
    # A^{k-1}_{b,k} is the main run's accuracy on k after b updates of k: the tracker's curve
    for k in range(3):
        xs, ys = tr.curves[k]
        start = xs.index(tr.boundaries[k])
        assert kt.A_main[k] == A(ys[start : start + 7])
    # reference probes start from the reference state
    if reference == "init":
        assert kt.A_ref[0][0] == A(kt.A_main[0][0])
    else:
        assert kt.A_ref[1][0] == A(kt.A_main[1][0])
    assert t["LCA_F"] == A(t["LCA_0_F"] + t["FKT_mean"], abs=1e-12)
    assert t["LCA_B"] == A(t["LCA_0_B"] + t["BKT_mean"], abs=1e-12)
    # every measured row is complete, and the final-state probe starts at the final accuracy
    for k in range(2):
        assert kt.A_final[k][0] == A(kt.final_acc[k])
    assert all(v is not None for row in kt.A_main for v in row)
    # the model learns: after 6 batches the main run beats its own start on average
    assert lca_forward(kt.A_main) > 0.1
    json.dumps(kt.to_dict())


@pytest.mark.parametrize("kind", ["fast", "ewc"])
def test_probing_leaves_the_main_run_unchanged(make_pmnist, kind):
    bm = make_pmnist(n_train=96, n_test=50)

    def run(probe):
        tr = StabilityGapMetric(bm.test_stream, samples_per_exp=50)
        metrics = [tr]
        if probe is not None:
            metrics.append(
                KnowledgeTransferMetric(bm.test_stream, beta=4, eval_samples=50, probe=probe)
            )
        s = _strategy(kind, metrics, others=[accuracy_metrics(stream=True, experience=True)])
        _train(s, bm)
        res = s.eval(bm.test_stream)
        acc = {k: v for k, v in res.items() if k.startswith("Top1_Acc")}  # not the transfer's
        return s, tr, acc, torch.rand(4)

    s1, tr1, r1, rng1 = run(True)
    s0, tr0, r0, rng0 = run(None)
    assert r1 == r0 and len(r1) == 4
    assert tr1.curves == tr0.curves
    assert torch.equal(rng1, rng0)
    for a, b in zip(s1.model.parameters(), s0.model.parameters()):
        assert torch.equal(a, b)
    kt = next(m for m in s1.evaluator.metrics if isinstance(m, KnowledgeTransferMetric))
    assert kt.complete and kt.probe_updates == 4 * (2 + 3)


def test_fork_keeps_the_method_and_drops_observers(make_pmnist):
    bm = make_pmnist(n_train=96, n_test=20)
    tr = StabilityGapMetric(bm.test_stream, samples_per_exp=20)
    s = _strategy("ewc", [tr], others=[accuracy_metrics(experience=True)])
    s.train(bm.train_stream[0])
    s.experience = bm.train_stream[1]  # as during training, when probes fork
    clone = fork_strategy(s, share=list(bm.train_stream))
    # data are shared, not copied: the clone's current experience is the strategy's own
    assert clone.experience is bm.train_stream[1]
    assert clone.experience.dataset is bm.train_stream[1].dataset
    s.experience = None
    names = [type(p).__name__ for p in clone.plugins]
    assert "PeriodicEval" not in names
    assert clone.evaluator is not s.evaluator and not clone.evaluator.active
    assert clone.evaluator.metrics == []  # the metrics stay with the main run
    assert clone.evaluator.loggers == []
    ewc_main = next(p for p in s.plugins if type(p).__name__ == "EWCPlugin")
    ewc_clone = next(p for p in clone.plugins if type(p).__name__ == "EWCPlugin")
    assert ewc_clone is not ewc_main
    for k, v in ewc_main.importances[0].items():
        assert torch.equal(v.data, ewc_clone.importances[0][k].data)
    # the clone's optimizer drives the clone's parameters only
    opt_params = {id(p) for g in clone.optimizer.param_groups for p in g["params"]}
    assert opt_params == {id(p) for p in clone.model.parameters()}
    before = copy.deepcopy(s.model.state_dict())
    clone.train(truncated_experience(bm.train_stream[1], 64, seed=0), eval_streams=[])
    for k, v in s.model.state_dict().items():
        assert torch.equal(v, before[k])


def test_probe_runs_the_ewc_penalty(make_pmnist):
    # the same probe from the same state gives different curves with and without EWC's penalty
    bm = make_pmnist(n_train=128, n_test=100)
    curves = {}
    for kind in ("naive", "ewc"):
        kt = KnowledgeTransferMetric(bm.test_stream, beta=5, eval_samples=100)
        s = _strategy(kind, [kt])
        _train(s, bm)
        curves[kind] = kt.A_final
    assert curves["naive"] != curves["ewc"]


def test_metric_emits_table_columns(make_pmnist):
    bm = make_pmnist(n_train=96, n_test=60)
    kt = KnowledgeTransferMetric(bm.test_stream, beta=3, eval_samples=60)
    s = _strategy("fast", [kt])
    _train(s, bm)
    last = s.evaluator.get_last_metrics()
    for key in (
        "LCA_0",
        "LCA_F",
        "LCA_B",
        "FKT_half",
        "FKT_beta",
        "FKT_mean",
        "BKT_half",
        "BKT_beta",
        "BKT_mean",
        "AvgFinalAcc",
    ):
        assert last[metric_name(key)] == A(kt.scores()[key])


def test_probes_are_deterministic(make_pmnist):
    bm = make_pmnist(n_train=64, n_test=60)
    out = []
    for _ in range(2):
        kt = KnowledgeTransferMetric(bm.test_stream, beta=3, eval_samples=60)
        _train(_strategy("fast", [kt], seed=1), bm)
        out.append(kt.to_dict())
    assert out[0]["A_final"] == out[1]["A_final"] and out[0]["A_ref"] == out[1]["A_ref"]
    assert out[0]["scores"] == out[1]["scores"]
