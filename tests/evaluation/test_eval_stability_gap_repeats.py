"""Stability-gap scores and tracker when a task repeats (``benchmarks.recurring``)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from avalanche.training.plugins import EvaluationPlugin

from avalanche_neumod.benchmarks import recurring
from avalanche_neumod.evaluation import (
    StabilityGapMetric,
    avg_acc,
    avg_min_acc,
    avg_stability_gap,
    min_acc,
    recovery_iterations,
    stability_gap,
    stability_gap_scores,
    wc_acc,
)

A = pytest.approx

# R, A1, R, A2: experiences start after 0, 2, 4, 6 updates; curves keyed by task.
B = [0, 2, 4, 6]
TASKS = [0, 1, 0, 2]
CURVES = {
    0: (list(range(9)), [0.1, 0.5, 0.8, 0.4, 0.6, 0.7, 0.9, 0.5, 0.8]),
    1: (list(range(2, 9)), [0.1, 0.6, 0.9, 0.3, 0.7, 0.6, 0.65]),
    2: ([6, 7, 8], [0.1, 0.5, 0.9]),
}


def test_scores_with_a_repeated_task_by_hand():
    # min-ACC_1: old = {R}; R after its first training (x in (2, 4]): .4 .6
    assert min_acc(CURVES, B, 1, TASKS) == A(0.4)
    # min-ACC_2 (R again): old = {A1}, R itself is the current task; A1 on (4, 6]: .3 .7
    assert min_acc(CURVES, B, 2, TASKS) == A(0.3)
    # min-ACC_3: R on (2, inf) -> .4 (its retraining span included), A1 on (4, inf) -> .3
    assert min_acc(CURVES, B, 3, TASKS) == A(0.35)
    assert avg_min_acc(CURVES, B, tasks=TASKS) == A(0.35)
    # WC-ACC_k: current task at end_k, n = distinct tasks trained so far
    assert wc_acc(CURVES, B, 0, tasks=TASKS) == A(0.8)
    assert wc_acc(CURVES, B, 1, tasks=TASKS) == A(0.9 / 2 + 0.4 / 2)
    assert wc_acc(CURVES, B, 2, tasks=TASKS) == A(0.9 / 2 + 0.3 / 2)  # A_R(6) = .9, n = 2
    assert wc_acc(CURVES, B, 3, tasks=TASKS) == A(0.9 / 3 + (2 / 3) * 0.35)
    # SG_k over old(k): SG_1 on R: ref .8, min .4; SG_2 on A1 only: ref .9, min .3;
    # SG_3 on R (ref .9, min .5) and A1 (ref .7, min .6)
    sg = [0.4 / 0.8, 0.6 / 0.9, (0.4 / 0.9 + 0.1 / 0.7) / 2]
    assert [stability_gap(CURVES, B, k, True, TASKS) for k in (1, 2, 3)] == A(sg)
    assert stability_gap(CURVES, B, 2, False, TASKS) == A(0.6)
    assert avg_stability_gap(CURVES, B, tasks=TASKS) == A(sum(sg) / 3)
    # recovery_2 on A1: min .3 at x=5, back to >= .9 - .25 at x=6
    assert recovery_iterations(CURVES, B, 2, 0.25, TASKS) == 1
    assert math.isinf(recovery_iterations(CURVES, B, 2, 0.01, TASKS))
    # De Lange's avg-ACC: one final accuracy per task
    assert avg_acc(CURVES, B, tasks=TASKS) == A((0.8 + 0.65 + 0.9) / 3)
    # NGM blocks of A1's curve start at its first experience (1): (2,4] .6 .9 | (4,6] .3 .7
    assert avg_min_acc(CURVES, B, "ngm", exp=1, tasks=TASKS) == A((0.6 + 0.3) / 2)
    # A2 was first trained in the last experience: no block before the last one
    with pytest.raises(ValueError):
        avg_min_acc(CURVES, B, "ngm", exp=2, tasks=TASKS)
    s = stability_gap_scores(CURVES, B, windows=(2,), tasks=TASKS)
    assert s["avg_min_ACC"] == A(0.35) and s["avg_SG"] == A(sum(sg) / 3)
    with pytest.raises(ValueError):
        min_acc(CURVES, B, 1, [0, 1])  # one task per experience


def test_tasks_default_is_no_repeats():
    # without repeats tasks[k] = k: every score equals the definition without tasks
    b = [0, 4, 8]
    curves = {
        0: (list(range(11)), [0.1, 0.5, 0.8, 0.9, 0.9, 0.6, 0.7, 0.85, 0.9, 0.7, 0.8]),
        1: (list(range(4, 11)), [0.2, 0.6, 0.7, 0.8, 0.8, 0.5, 0.75]),
        2: ([8, 9, 10], [0.1, 0.6, 0.9]),
    }
    for conv in ("delange", "ngm"):
        plain = stability_gap_scores(curves, b, conv, (2, 3), 0.1)
        given = stability_gap_scores(curves, b, conv, (2, 3), 0.1, tasks=[0, 1, 2])
        assert given == A(plain)
    for k in range(3):
        assert wc_acc(curves, b, k, tasks=[0, 1, 2]) == A(wc_acc(curves, b, k))


def _recurring(make_pmnist):
    # R, A1, R, A2 with 96 / 16 = 6 updates each
    return recurring(make_pmnist(n_experiences=3, n_train=96, n_test=50))


def _acc(model, data):
    model.eval()
    with torch.no_grad():
        return float((model(data.x).argmax(1) == data.y).float().mean())


def test_tracker_on_a_recurring_stream(make_pmnist, small_strategy):
    # regression: the tracker raised at the second training of R
    bm = _recurring(make_pmnist)
    assert bm.train_order == TASKS
    tr = metric = StabilityGapMetric(bm.test_stream, samples_per_exp=50, windows=(2,))
    ev = EvaluationPlugin(metric, loggers=[])
    s = small_strategy(evaluator=ev)
    for k, exp in enumerate(bm.train_stream):
        s.train(exp)
        if k == 2:  # R trained twice, A2 not yet: A2's test set is not evaluated
            assert tr.curves[2] == ([], [])
    assert tr.tasks == TASKS and tr.boundaries == [0, 6, 12, 18]
    # one curve per task, from its first training on, one point per update
    assert tr.curves[0][0] == list(range(25))
    assert tr.curves[1][0] == list(range(6, 25))
    assert tr.curves[2][0] == list(range(18, 25))
    for i in range(3):  # the final point: the final model on the task's own subset
        assert tr.curves[i][1][-1] == A(_acc(s.model, tr.evaluator.subsets[i]))
    d = json.loads(json.dumps(tr.to_dict()))
    assert d["tasks"] == TASKS
    sc = tr.scores(windows=(2,))
    assert sc == A(stability_gap_scores(d["curves"], d["boundaries"], windows=(2,), tasks=TASKS))
    assert all(math.isfinite(sc[k]) for k in ("avg_min_ACC", "WC_ACC", "avg_SG", "WF2"))
    allm = ev.get_all_metrics()
    # per-experience scores after each of the 4 experiences, final ones once, at the end
    assert len(allm["WCAcc_Exp/train_phase/test_stream"][0]) == 4
    assert allm["AvgStabilityGap_Stream/train_phase/test_stream"][1] == [A(sc["avg_SG"])]
    # SG_2 (R again) is the gap on A1 alone
    sg2 = stability_gap(d["curves"], d["boundaries"], 2, True, TASKS)
    assert allm["StabilityGap_Exp/train_phase/test_stream"][1][1] == A(sg2)
    x1, a1 = tr.curves[1]
    ref = a1[x1.index(12)]
    seg = [a for x, a in zip(x1, a1) if 12 <= x <= 18]
    assert ref > min(seg)  # A1 dips while R is retrained
    assert sg2 == A((ref - min(seg)) / ref)
