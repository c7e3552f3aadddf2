"""LCA/FKT/BKT when a task repeats (``benchmarks.recurring``): by hand and on real runs."""

from __future__ import annotations

import json

import pytest
from avalanche.training.plugins import EvaluationPlugin

from avalanche_neumod.benchmarks import recurring
from avalanche_neumod.evaluation import (
    KnowledgeTransferMetric,
    StabilityGapMetric,
    bkt,
    fkt,
    lca_backward,
    lca_forward,
    lca_zero,
    transfer_table,
)

A = pytest.approx
# R, A1, R, A2 (tasks 0, 1, 0, 2), beta = 2: A_main per training experience, the others per task
TASKS = [0, 1, 0, 2]
A_MAIN = [[0.1, 0.2, 0.3], [0.2, 0.4, 0.6], [0.5, 0.7, 0.9], [0.3, 0.5, 0.7]]
A_FINAL = [[0.5, 0.6, 0.7], [0.4, 0.5, 0.9], [None, None, None]]
A_REF = [[0.1, 0.3, 0.5], [0.1, 0.2, 0.3], [0.2, 0.2, 0.2]]


def test_formulas_with_a_repeated_task_by_hand():
    # FKT_b over training experiences 1..3 (A1, R again, A2), each against its task's reference
    fk = [(0.1 + 0.4 + 0.1) / 3, (0.2 + 0.4 + 0.3) / 3, (0.3 + 0.4 + 0.5) / 3]
    assert [fkt(A_MAIN, A_REF, b, TASKS) for b in range(3)] == A(fk)
    assert lca_forward(A_MAIN) == A(4.8 / 9)
    assert lca_zero(A_REF, "forward", TASKS) == A((0.6 + 0.9 + 0.6) / 9)  # rows 1, 0, 2
    # backward: the trained tasks but the last experience's (A2): R and A1
    assert [bkt(A_FINAL, A_REF, b, TASKS) for b in range(3)] == A([0.35, 0.3, 0.4])
    assert lca_backward(A_FINAL, TASKS) == A(3.6 / 6)
    assert lca_zero(A_REF, "backward", TASKS) == A(1.5 / 6)
    assert lca_zero(A_REF, "all", TASKS) == A(2.1 / 9)
    t = transfer_table(A_MAIN, A_FINAL, A_REF, [0.7, 0.9, 0.8], TASKS)
    assert t["FKT_mean"] == A(0.3) and t["BKT_mean"] == A(0.35)
    assert t["LCA_F"] == A(t["LCA_0_F"] + t["FKT_mean"])
    assert t["LCA_B"] == A(t["LCA_0_B"] + t["BKT_mean"])
    # a stream ending with R: R is the last experience's task, so backward = {A1}
    ends_r = [0, 1, 0]
    assert [bkt(A_FINAL, A_REF, b, ends_r) for b in range(3)] == A([0.3, 0.3, 0.6])
    assert lca_zero(A_REF, "all", ends_r) == A(1.5 / 6)  # A2 never trained
    # 4 training experiences for 3 tasks without tasks=: refused, not misaligned
    with pytest.raises(ValueError, match="tasks="):
        fkt(A_MAIN, A_REF, 0)
    with pytest.raises(ValueError):
        fkt(A_MAIN, A_REF, 0, [0, 1, 0, 3])  # no task 3
    # without repeats, tasks = 0..T-1 is the paper's definition
    plain = A_MAIN[:1] + A_MAIN[3:] + A_MAIN[1:2]
    assert transfer_table(plain, A_FINAL, A_REF, tasks=[0, 1, 2]) == A(
        transfer_table(plain, A_FINAL, A_REF)
    )


def _run(make, bm, order, beta=3):
    """FastNaive from ``make`` (the ``small_strategy`` fixture) trained on ``order``."""
    kt = KnowledgeTransferMetric(bm.test_stream, beta=beta, eval_samples=50)
    tr = StabilityGapMetric(bm.test_stream, samples_per_exp=50)  # the same subsets (seed 0)
    ev = EvaluationPlugin(kt, tr, loggers=[])
    s = make(evaluator=ev)
    for k in order:
        s.train(bm.train_stream[k])
    return kt, tr, ev.get_all_metrics()


def test_metric_on_a_recurring_stream(make_pmnist, small_strategy):
    # regression: R's second training was scored on another task's test set,
    # and the metric raised at the fourth training experience
    bm = recurring(make_pmnist(n_experiences=3, n_train=96, n_test=50))  # R A1 R A2, 6 updates
    kt, tr, allm = _run(small_strategy, bm, range(4))
    assert kt.tasks == TASKS and len(kt.A_main) == 4 and len(kt.end_acc) == 4
    # A^{k-1}_{b,k} of every training experience is on its own task's test subset:
    # the tracker's curve of that task from the experience's start
    for k, task in enumerate(kt.tasks):
        xs, ys = tr.curves[task]
        start = xs.index(tr.boundaries[k])
        assert kt.A_main[k] == A(ys[start : start + 4])
    # probes: from the final state on R and A1 (not A2, the last), from the initial state on all
    assert kt.A_final[2] == [None] * 4
    assert kt.A_final[0][0] == A(kt.final_acc[0]) and kt.A_final[1][0] == A(kt.final_acc[1])
    assert kt.A_ref[0][0] == A(kt.A_main[0][0])  # reference "init": the initial model on R
    assert kt.probe_updates == 3 * (2 + 3)
    t = kt.scores()
    assert t["LCA_F"] == A(t["LCA_0_F"] + t["FKT_mean"], abs=1e-12)
    assert t["LCA_B"] == A(t["LCA_0_B"] + t["BKT_mean"], abs=1e-12)
    by_hand = sum(kt.A_main[k][3] - kt.A_ref[TASKS[k]][3] for k in (1, 2, 3)) / 3
    assert t["FKT_beta"] == A(by_hand)
    # emitted once, after the last experience
    xs, vals = allm["LCA_F_Stream/train_phase/test_stream"]
    assert xs == [24] and vals == [A(t["LCA_F"])]
    d = json.loads(json.dumps(kt.to_dict()))
    assert d["tasks"] == TASKS
    assert transfer_table(d["A_main"], d["A_final"], d["A_ref"], tasks=d["tasks"]) == A(
        {k: v for k, v in t.items() if k not in ("AvgFinalAcc", "AvgEndAcc")}
    )


def test_training_on_after_every_task_redoes_the_final_probes(make_pmnist, small_strategy):
    # R, A1, A2, then R again: probes after A2 (every task trained), redone after R
    bm = recurring(make_pmnist(n_experiences=3, n_train=96, n_test=50))
    kt, _tr, allm = _run(small_strategy, bm, [0, 1, 3, 2])
    assert kt.tasks == [0, 1, 2, 0] and kt.rounds == 2
    # backward tasks now exclude R (the last experience's task); A_ref probed once
    assert kt.A_final[0] == [None] * 4 and kt.A_final[2][0] == A(kt.final_acc[2])
    assert kt.probe_updates == 3 * (2 + 3) + 3 * 2
    t = kt.scores()
    assert t["LCA_B"] == A(t["LCA_0_B"] + t["BKT_mean"], abs=1e-12)
    assert allm["LCA_B_Stream/train_phase/test_stream"][0] == [18, 24]
    assert allm["LCA_B_Stream/train_phase/test_stream"][1][-1] == A(t["LCA_B"])
