"""Stability-gap scores on hand-computed curves, and the tracker's behaviour on real runs."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch

from avalanche_neumod.evaluation import (
    StabilityGapMetric,
    avg_acc,
    avg_min_acc,
    avg_recovery_iterations,
    avg_stability_gap,
    mean_curves,
    min_acc,
    recovery_iterations,
    stability_gap,
    stability_gap_scores,
    wc_acc,
    windowed_forgetting,
    windowed_plasticity,
)

# Three experiences starting after 0, 4 and 8 updates.
B = [0, 4, 8]
CURVES = {
    0: (
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        [0.1, 0.5, 0.8, 0.9, 0.9, 0.6, 0.7, 0.85, 0.9, 0.7, 0.8],
    ),
    1: ([4, 5, 6, 7, 8, 9, 10], [0.2, 0.6, 0.7, 0.8, 0.8, 0.5, 0.75]),
    2: ([8, 9, 10], [0.1, 0.6, 0.9]),
}
A = pytest.approx


def test_min_acc_by_hand():
    # k=1: curve 0 after its end (x in (4, 8]): 0.6, 0.7, 0.85, 0.9 -> 0.6
    assert min_acc(CURVES, B, 1) == A(0.6)
    # k=2: curve 0 on (4, inf) -> 0.6; curve 1 on (8, inf): 0.5, 0.75 -> 0.5; mean 0.55
    assert min_acc(CURVES, B, 2) == A(0.55)
    assert min_acc(CURVES, B) == A(0.55)
    assert avg_min_acc(CURVES, B) == A(0.55)


def test_wc_acc_and_avg_acc_by_hand():
    assert wc_acc(CURVES, B, 0) == A(0.9)  # A_0(end_0 = 4)
    assert wc_acc(CURVES, B, 1) == A(0.8 / 2 + 0.5 * 0.6)  # 0.7
    assert wc_acc(CURVES, B, 2) == A(0.9 / 3 + (2 / 3) * 0.55)  # 0.66667
    assert avg_acc(CURVES, B) == A((0.8 + 0.75 + 0.9) / 3)


def test_stability_gap_by_hand():
    # SG_1 on curve 0: ref A_0(4) = 0.9, min over x in [4, 8] = 0.6
    assert stability_gap(CURVES, B, 1) == A(0.3 / 0.9)
    assert stability_gap(CURVES, B, 1, relative=False) == A(0.3)
    # SG_2: curve 0 ref 0.9 min 0.7 (0.2); curve 1 ref 0.8 min 0.5 (0.3)
    assert stability_gap(CURVES, B, 2) == A((0.2 / 0.9 + 0.3 / 0.8) / 2)
    assert stability_gap(CURVES, B, 2, relative=False) == A(0.25)
    assert avg_stability_gap(CURVES, B) == A((0.3 / 0.9 + (0.2 / 0.9 + 0.3 / 0.8) / 2) / 2)
    assert avg_stability_gap(CURVES, B, relative=False) == A((0.3 + 0.25) / 2)
    # NGM-SGD's protocol: only experience 0 tracked
    only0 = {0: CURVES[0]}
    assert stability_gap(only0, B, 2) == A(0.2 / 0.9)
    assert avg_stability_gap(only0, B) == A((0.3 / 0.9 + 0.2 / 0.9) / 2)


def test_recovery_by_hand():
    # k=1: minimum 0.6 at x=5, back to >= 0.89 at x=8 -> 3 updates
    assert recovery_iterations(CURVES, B, 1) == 3
    # k=2: neither curve gets back within 0.01 of its reference -> never
    assert math.isinf(recovery_iterations(CURVES, B, 2))
    # tolerance 0.1: k=1 -> >= 0.8 at x=7 (2);
    # k=2 -> curve 0 >= 0.8 at x=10 (1), curve 1 >= 0.7 at x=10 (1)
    assert recovery_iterations(CURVES, B, 2, tolerance=0.1) == 1
    assert avg_recovery_iterations(CURVES, B, tolerance=0.1) == A(1.5)


def test_windowed_forgetting_and_plasticity_by_hand():
    curves = {0: ([0, 1, 2, 3], [1.0, 0.9, 0.8, 0.7]), 1: ([0, 1, 2, 3], [0.0, 0.5, 0.2, 0.9])}
    assert windowed_forgetting(curves, 2) == A((0.1 + 0.3) / 2)
    assert windowed_forgetting(curves, 3) == A((0.2 + 0.3) / 2)
    assert windowed_forgetting(curves, 4) == A((0.3 + 0.3) / 2)
    assert windowed_forgetting(curves, 100) == A((0.3 + 0.3) / 2)
    assert windowed_plasticity(curves, 2) == A((0.0 + 0.7) / 2)
    assert windowed_plasticity(curves, 4) == A((0.0 + 0.9) / 2)
    # main example, w=2: curve 0 drop 0.9->0.6, curve 1 0.8->0.5, curve 2 none
    assert windowed_forgetting(CURVES, 2) == A(0.2)


def test_ngm_convention_by_hand():
    # blocks of curve 0: (0,4]: .5 .8 .9 .9 | (4,8]: .6 .7 .85 .9 | (8,inf): .7 .8
    assert avg_acc(CURVES, B, "ngm", exp=0) == A((0.9 + 0.9 + 0.8) / 3)
    assert avg_min_acc(CURVES, B, "ngm", exp=0) == A((0.5 + 0.6) / 2)
    assert wc_acc(CURVES, B, convention="ngm", exp=0) == A(0.8 / 3 + (2 / 3) * 0.55)
    s = stability_gap_scores({0: CURVES[0]}, B, convention="ngm", windows=(2,))
    assert s["avg_min_ACC"] == A(0.55) and s["WF2"] == A(0.3)


def test_json_round_trip_keys_and_dict_curves():
    blob = json.loads(json.dumps({str(k): {"x": x, "acc": a} for k, (x, a) in CURVES.items()}))
    assert min_acc(blob, B, 2) == A(0.55)
    assert stability_gap_scores(blob, B)["avg_SG_abs"] == A(0.275)


@pytest.mark.parametrize(
    "call",
    [
        lambda: windowed_forgetting(CURVES, 1),
        lambda: windowed_plasticity(CURVES, 0),
        lambda: min_acc({}, B),
        lambda: min_acc({0: ([], [])}, B),
        lambda: stability_gap({0: ([0, 0], [0.1, 0.2])}, [0, 1], 1),  # x not increasing
        lambda: wc_acc(CURVES, B, convention="other"),
        lambda: stability_gap(CURVES, B, 0),
        lambda: recovery_iterations(CURVES, B, 1, tolerance=-1),
    ],
)
def test_bad_arguments_raise(call):
    with pytest.raises(ValueError):
        call()


def test_tracker_bad_arguments(make_pmnist):
    bm = make_pmnist()
    for kwargs in (
        {"eval_every": 0},
        {"samples_per_exp": 0},
        {"tracked": []},
        {"tracked": [5]},
        {"tracked": "some"},
    ):
        with pytest.raises(ValueError):
            StabilityGapMetric(bm.test_stream, **kwargs)
    with pytest.raises(ValueError):
        StabilityGapMetric(bm.test_stream, windows=(1,))
    with pytest.raises(ValueError):
        StabilityGapMetric(bm.test_stream, convention="x")


def _run(make, bm, tracker=None, seed=0, extra=()):
    """FastNaive from ``make`` (the ``small_strategy`` fixture), MLP 784-32-10, on ``bm``."""
    metrics = [] if tracker is None else [tracker]
    s = make(plugins=list(extra), metrics=metrics, hidden=(32,), seed=seed)
    init = copy.deepcopy(s.model)
    for exp in bm.train_stream:
        s.train(exp)
    return s, init


def _acc(model, data):
    model.eval()
    with torch.no_grad():
        return float((model(data.x).argmax(1) == data.y).float().mean())


def test_tracker_points_seen_subsets_and_x(make_pmnist, small_strategy):
    bm = make_pmnist()
    tr = StabilityGapMetric(bm.test_stream, samples_per_exp=50, seed=3)
    s, init = _run(small_strategy, bm, tr)
    n_iter = 240 // 16
    assert tr.boundaries == [0, n_iter, 2 * n_iter]
    for k, (xs, _ys) in tr.curves.items():
        # pre-update point present, at the experience's start; x strictly increasing
        assert xs[0] == tr.boundaries[k]
        assert all(b > a for a, b in zip(xs, xs[1:]))
        # eval_every=1: one point per update from the experience's start on
        assert xs == list(range(tr.boundaries[k], 3 * n_iter + 1))
    # the first point is the initial model's accuracy on the fixed subset
    sub0 = tr.evaluator.subsets[0]
    assert len(sub0) == 50
    assert tr.curves[0][1][0] == pytest.approx(_acc(init, sub0))
    # the final points are the final model's accuracies on the same fixed subsets
    for k in range(3):
        assert tr.curves[k][1][-1] == pytest.approx(_acc(s.model, tr.evaluator.subsets[k]))
    # fixed subsets: same rows for the same seed, other rows for another seed
    tr2 = StabilityGapMetric(bm.test_stream, samples_per_exp=50, seed=3)
    tr3 = StabilityGapMetric(bm.test_stream, samples_per_exp=50, seed=4)
    assert torch.equal(tr2.evaluator.subsets[1].x, tr.evaluator.subsets[1].x)
    assert not torch.equal(tr3.evaluator.subsets[1].x, tr.evaluator.subsets[1].x)
    json.dumps(tr.to_dict())


def test_tracker_only_seen_experiences(make_pmnist, small_strategy):
    bm = make_pmnist()
    tr = StabilityGapMetric(bm.test_stream, samples_per_exp=30, eval_every=4)
    s = small_strategy(metrics=[tr])
    s.train(bm.train_stream[0])
    assert tr.curves[1] == ([], []) and tr.curves[2] == ([], [])
    # eval_every=4 over 15 updates: pre-update 0, 4, 8, 12 and the end point 15
    assert tr.curves[0][0] == [0, 4, 8, 12, 15]
    s.train(bm.train_stream[1])
    assert tr.curves[2] == ([], [])
    assert tr.curves[1][0] == [15, 16, 20, 24, 28, 30]
    assert tr.curves[0][0] == [0, 4, 8, 12, 15, 16, 20, 24, 28, 30]


def test_tracker_tracked_zero_and_rng_untouched(make_pmnist, small_strategy):
    bm = make_pmnist()
    tr = StabilityGapMetric(bm.test_stream, samples_per_exp=40, tracked=[0])
    with_tr, _ = _run(small_strategy, bm, tr)
    after_with = torch.rand(3)
    without, _ = _run(small_strategy, bm, None)
    after_without = torch.rand(3)
    for a, b in zip(with_tr.model.parameters(), without.model.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(after_with, after_without)
    assert set(tr.nonempty_curves()) == {0}
    sc = tr.scores(convention="ngm")
    assert 0 <= sc["avg_min_ACC"] <= 1 and sc["avg_SG"] >= 0


class _ZeroHeadAfterIteration:
    """A method plugin that changes the model after each update."""

    def __init__(self):
        from avalanche.core import SupervisedPlugin

        class P(SupervisedPlugin):
            def after_training_iteration(self, strategy, **kwargs):
                with torch.no_grad():
                    strategy.model[-1].bias.fill_(0.0)
                    strategy.model[-1].weight.mul_(0.0)

        self.plugin = P()


def test_tracker_sees_the_complete_iteration(make_pmnist, small_strategy):
    # a plugin zeroes the head after every update: every point after an
    # update must see the zeroed head (chance-level, all-class-0 predictions)
    bm = make_pmnist(n_experiences=2)
    tr = StabilityGapMetric(bm.test_stream, samples_per_exp=60)
    zero = _ZeroHeadAfterIteration().plugin
    _run(small_strategy, bm, tr, extra=(zero,))
    for k in range(2):
        sub = tr.evaluator.subsets[k]
        share0 = float((sub.y == 0).float().mean())
        xs, ys = tr.curves[k]
        for x, y in zip(xs, ys):
            if x > 0:
                assert y == pytest.approx(share0)


def test_mean_curve_versus_mean_of_scores_by_hand():
    # two seeds, one experience boundary at x=2; seed 1 dips to 0.2, seed 2 to 0.6
    b = [0, 2]
    r1 = {0: ([0, 1, 2, 3, 4], [0.0, 0.8, 0.8, 0.2, 0.8])}
    r2 = {0: ([0, 1, 2, 3, 4], [0.0, 0.8, 0.8, 0.8, 0.6])}
    m = mean_curves([r1, r2])
    assert m[0][1] == [A(0.0), A(0.8), A(0.8), A(0.5), A(0.7)]
    # per seed: SG_1 = 0.6/0.8 and 0.2/0.8 -> mean 0.5; mean curve: 0.3/0.8
    per_seed = (stability_gap(r1, b, 1) + stability_gap(r2, b, 1)) / 2
    assert per_seed == A(0.5)
    assert stability_gap(m, b, 1) == A(0.375)
    with pytest.raises(ValueError):
        mean_curves([r1, {0: ([0, 1], [0.1, 0.2])}])
