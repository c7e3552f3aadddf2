"""NGM-SGD's stability-gap formula (``convention="ngm"``) on hand-computed curves.

The authors' SG_k = (A(end_{k-1}) - min over block k) / A(end_{k-1}) is not clamped: it is
negative when accuracy only rises after a switch and NaN for a zero reference.
``"ngm_clamped"`` keeps the clamped variant under its own name.
"""

from __future__ import annotations

import math

import pytest

from avalanche_neumod.evaluation import avg_stability_gap, stability_gap, stability_gap_scores
from avalanche_neumod.evaluation.stability_gap import CONVENTIONS

A = pytest.approx
B = [0, 2, 4]
# blocks: (0,2]: .4 .5 | (2,4]: .7 .8 | (4,inf): .85 .9 -- accuracy only rises
RISING = {0: ([0, 1, 2, 3, 4, 5, 6], [0.1, 0.4, 0.5, 0.7, 0.8, 0.85, 0.9])}
# A(end_0) = A(2) = 0: a zero reference for SG_1
ZERO_REF = {0: ([0, 1, 2, 3, 4, 5, 6], [0.0, 0.0, 0.0, 0.3, 0.6, 0.2, 0.5])}


def test_ngm_gap_can_be_negative():
    assert stability_gap(RISING, B, 1, convention="ngm") == A((0.5 - 0.7) / 0.5)  # -0.4
    assert stability_gap(RISING, B, 2, convention="ngm") == A((0.8 - 0.85) / 0.8)  # -0.0625
    assert stability_gap(RISING, B, 1, relative=False, convention="ngm") == A(-0.2)
    assert avg_stability_gap(RISING, B, convention="ngm") == A((-0.4 - 0.0625) / 2)
    s = stability_gap_scores(RISING, B, "ngm")
    assert s["avg_SG"] == A(-0.23125) and s["avg_SG_abs"] == A((-0.2 - 0.05) / 2)


def test_ngm_zero_reference_is_nan():
    assert math.isnan(stability_gap(ZERO_REF, B, 1, convention="ngm"))
    assert stability_gap(ZERO_REF, B, 1, relative=False, convention="ngm") == A(-0.3)
    assert stability_gap(ZERO_REF, B, 2, convention="ngm") == A(0.4 / 0.6)
    s = stability_gap_scores(ZERO_REF, B, "ngm")
    assert math.isnan(s["avg_SG"])  # the plain mean of SG_k, as the authors'
    assert s["avg_SG_abs"] == A((-0.3 + 0.4) / 2)


def test_clamped_variant_has_its_own_name():
    assert "ngm_clamped" in CONVENTIONS
    assert stability_gap(RISING, B, 1, convention="ngm_clamped") == 0.0
    assert stability_gap_scores(RISING, B, "ngm_clamped")["avg_SG"] == 0.0
    assert stability_gap(ZERO_REF, B, 1, convention="ngm_clamped") == 0.0
    assert stability_gap_scores(ZERO_REF, B, "ngm_clamped")["avg_SG"] == A((0.0 + 0.4 / 0.6) / 2)
    # the other NGM scores do not depend on the clamp
    a, c = stability_gap_scores(RISING, B, "ngm"), stability_gap_scores(RISING, B, "ngm_clamped")
    for key in ("avg_ACC", "avg_min_ACC", "WC_ACC"):
        assert a[key] == c[key]


def test_de_lange_gap_unchanged():
    # De Lange's minimum includes the reference point: never negative; zero reference -> 0
    assert stability_gap(RISING, B, 1) == 0.0
    assert stability_gap(ZERO_REF, B, 1) == 0.0
    assert stability_gap_scores(RISING, B)["avg_SG"] == 0.0


def test_ngm_gap_equals_de_lange_where_accuracy_drops():
    curves = {0: ([0, 1, 2, 3, 4, 5], [0.5, 0.9, 0.95, 0.6, 0.9, 0.8])}
    for conv in ("ngm", "ngm_clamped"):
        assert stability_gap(curves, B, 1, convention=conv) == A(0.35 / 0.95)
        assert stability_gap(curves, B, 2, convention=conv) == A(0.1 / 0.9)
    assert stability_gap(curves, B, 1) == A(0.35 / 0.95)


def test_unknown_convention_lists_valid_ones():
    with pytest.raises(ValueError, match="ngm_clamped"):
        stability_gap(RISING, B, 1, convention="authors")


def test_emitted_names_carry_the_convention_prefix():
    from avalanche_neumod.evaluation.stability_gap import stream_metric_name

    assert (
        stream_metric_name("avg_SG", "delange") == "AvgStabilityGap_Stream/train_phase/test_stream"
    )
    assert stream_metric_name("avg_SG", "ngm").startswith("NGM_AvgStabilityGap_Stream/")
    assert stream_metric_name("avg_SG", "ngm_clamped").startswith("NGMClamped_AvgStabilityGap")
    assert stream_metric_name("WF10", "ngm") == "WF10_Stream/train_phase/test_stream"
