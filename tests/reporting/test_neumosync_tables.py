"""NeuMoSync's diagnostics table prints the stored values; the claims tell ablations
(a mechanism switched off) from design variants."""

from __future__ import annotations

import math

import pytest
from cell_dicts import cell_dict

from avalanche_neumod.reporting import neumosync_tables as nt
from avalanche_neumod.reporting.claims import claims, is_ablation
from avalanche_neumod.reporting.run_view import View


def _diag(std: float, dev: float, within: float, between: float) -> dict:
    """Diagnostics curves of a 3-layer net (layers 1, 3 and the output layer 5)."""
    out = {}
    values = {
        "AlphaStd": std,
        "AlphaDev": dev,
        "AlphaInputWithin": within,
        "AlphaInputBetween": between,
        "AlphaTaskChange": 0.5,
    }
    for name, v in values.items():
        for layer in ("1", "3", "5"):
            for j, kind in enumerate(("sm", "wc", "gain", "shift")):
                last = 99.0 if layer == "5" else v * (1 + j)  # the output layer: left out
                out[f"{name}/train_phase/train_stream/{layer}/{kind}"] = {
                    "x": [10, 20],
                    "value": [123.0, last],  # only the value after the last task counts
                }
    return out


def _cell(method: str, seed: int, acc: float, args: dict, diag=None, name="NeuMoSync") -> dict:
    measures = {"neumosync_diagnostics": diag} if diag else {}
    return cell_dict("s", method, seed, name=name, args=args, acc=acc, measures=measures)


def test_diagnostics_table_reads_the_last_value_of_hidden_layers():
    cells = [
        _cell("NeuMoSync", s, 0.5, {}, _diag(0.01 * (s + 1), 0.2, 1e-5, 1e-3)) for s in range(3)
    ]
    cells += [_cell("Naive", s, 0.4, {}, name="Naive") for s in range(3)]
    view = View(cells)
    get = nt.last_value("AlphaStd")
    # mean over layers 1 and 3 and the four kinds of v * (1 + j): v * 2.5; the output
    # layer's 99 and the first point's 123 are not read
    assert get(view.group("s", "NeuMoSync").ok[0]) == pytest.approx(0.01 * 2.5)
    assert math.isnan(get(view.group("s", "Naive").ok[0]))
    table = nt.alpha_diagnostics_table(view)
    rows = [r for r in table.splitlines() if r.startswith("| s |")]
    assert len(rows) == 1 and "| NeuMoSync |" in rows[0]  # Naive has no diagnostics
    cols = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cols[2].startswith("0.05 ±")  # std: mean over seeds of 0.025, 0.05, 0.075
    assert cols[3] == "0.5 ± 0"  # dev 0.2 * 2.5, equal on every seed
    assert float(cols[-2]) == pytest.approx(0.05 / 0.5, rel=1e-2)  # std / dev
    assert float(cols[-1]) == pytest.approx(100.0, rel=1e-2)  # between / within
    assert nt.alpha_diagnostics_table(View([c for c in cells if "Naive" in c["cell_id"]])) is None


def test_claims_split_ablations_from_design_variants():
    assert is_ablation({"consolidation": False}) and is_ablation({"neurosync": False})
    assert not is_ablation({"alpha_scale": [0.5, 0.5, 0.5, 0.1]})
    assert not is_ablation({"consolidation": True})
    cells = []
    for s in range(4):
        cells.append(_cell("Naive", s, 0.40 + 0.01 * s, {}, name="Naive"))
        cells.append(_cell("NeuMoSync", s, 0.50 + 0.01 * s, {}))
        cells.append(_cell("no consolidation", s, 0.30 + 0.01 * s, {"consolidation": False}))
        cells.append(_cell("bounded", s, 0.60 + 0.01 * s, {"alpha_scale": [0.5] * 4}))
    text = claims(View(cells))
    abl = text.split("NeuMoSync (Figure 5)")[1].split("\n- ")[0]
    var = text.split("NeuMoSync design variants")[1].split("\n- ")[0]
    assert "vs no consolidation" in abl and "bounded" not in abl
    assert "bounded's average final accuracy vs NeuMoSync" in var
    assert "no consolidation" not in var


# ------------------------------------------------------- saturation, spread, logit scale


def _alpha_history(sm_late: float) -> dict:
    """One hidden layer "1" and the output layer "2", two tasks of 100 iterations, a record
    every 10: alpha_SM 0.5 (the lower cap) in the first 10 % of task 2, else ``sm_late``
    on the hidden layer and 1.25 on the output; WC 0.5 (the upper cap) everywhere on the
    hidden layer, 0.2 with std 0.1 on the output; gain 1.25 with std 0.05 on the hidden
    layer; shift off on both, gain off on the output."""
    recs = []
    for it in range(0, 200, 10):
        sm = 0.5 if 100 <= it < 110 else sm_late
        recs.append(
            {
                "iteration": it,
                "experience": it // 100,
                "layers": {
                    "1": {
                        "sm": [sm, 0.0],
                        "wc": [0.5, 0.0],
                        "gain": [1.25, 0.05],
                        "shift": [0.0, 0.0],
                    },
                    "2": {
                        "sm": [1.25, 0.0],
                        "wc": [0.2, 0.1],
                        "gain": [1.0, 0.0],
                        "shift": [0.0, 0.0],
                    },
                },
            }
        )
    return {
        "layers": ["1", "2"],
        "iterations": recs,
        "experiences": [{"experience": 0, "iterations": 100}, {"experience": 1, "iterations": 200}],
    }


def _logits(ratio_first: float, ratio_last: float) -> dict:
    pre = "LogitScale/train_phase/train_stream"
    return {
        f"{pre}/inference/abs": {"x": [100, 200], "value": [2.0 * ratio_first, 3.0 * ratio_last]},
        f"{pre}/main/abs": {"x": [100, 200], "value": [2.0, 3.0]},
    }


def test_saturation_table_reads_the_stored_histories():
    cells = [
        _cell(
            "NeuMoSync",
            s,
            0.5,
            {},
            diag=_logits(10.0 + s, 20.0),
        )
        for s in range(2)
    ]
    for c in cells:
        c["measures"]["history"] = {"alphas": _alpha_history(1.5)}
    old = _cell("unbounded", 0, 0.5, {"alpha_scale": 1.0})  # stored before LogitScale
    old["measures"]["history"] = {"alphas": _alpha_history(1.5)}
    cells += [old, _cell("Naive", 0, 0.4, {}, name="Naive")]
    view = View(cells)
    g = view.group("s", "NeuMoSync")
    c = g.ok[0]
    # hidden SM: 19 of 20 records at the upper cap (1.5), 1 at the lower (0.5); output SM
    # 1.25: none; mean over the two layers
    assert nt.saturation("sm")(c) == pytest.approx((20 / 20 + 0) / 2)
    assert nt.saturation("sm", "1", "lower")(c) == pytest.approx(1 / 20)
    assert nt.saturation("wc", "1")(c) == 1.0 and nt.saturation("wc", "2")(c) == 0.0
    assert math.isnan(nt.saturation("shift")(c))  # off everywhere
    # spread: hidden gain 0.05 / 0.25, output WC 0.1 / 0.2, the rest 0: mean over the on ones
    assert nt.spread("gain")(c) == pytest.approx(0.2)
    assert nt.spread()(c) == pytest.approx((0 + 0 + 0.2 + 0 + 0.5) / 5)
    # task 2: hidden SM first 10 % 0.5, last 1.5; output 1.25 both: mean -0.5
    assert nt.switch_response("sm")(c) == pytest.approx(-0.5)
    assert nt.switch_response("sm", "1")(c) == pytest.approx(-1.0)
    assert nt.logit_ratio(index=0)(c) == pytest.approx(10.0)
    assert nt.logit_ratio()(c) == pytest.approx(20.0)
    # a = 1 (the cell's alpha_scale): 1.5 is half-way, nothing at a cap
    assert nt.saturation("sm")(view.group("s", "unbounded").ok[0]) == 0.0
    table = nt.saturation_table(view)
    rows = {line.split(" | ")[1]: line for line in table.splitlines()[2:]}
    assert set(rows) == {"NeuMoSync", "unbounded"}  # Naive has no alpha history
    assert "| 50 ± 0 % | 50 ± 0 % |" in rows["NeuMoSync"] and "| – |" in rows["NeuMoSync"]
    assert "10.5 ± 6.4 / 20.0 ± 0.0" in rows["NeuMoSync"]
    assert rows["unbounded"].endswith("| not recorded |")
    detail = nt.saturation_detail_table(view)
    assert "| s | NeuMoSync | 1 | 95 / 5 %, 1.00, -1.00 | 100 / 0 %, 1.00, +0.00 |" in detail


def test_recorded_caps_win_over_the_configuration():
    c = _cell("NeuMoSync", 0, 0.5, {"alpha_scale": 1.0}, diag=_logits(1.0, 1.0))
    pre = "AlphaScale/train_phase/train_stream"
    for layer in ("1", "2"):
        for k, a in zip(("sm", "wc", "gain", "shift"), (0.5, 0.5, 0.0, 0.0)):
            c["measures"]["neumosync_diagnostics"][f"{pre}/{layer}/{k}"] = {"x": [1], "value": [a]}
    c["measures"]["history"] = {"alphas": _alpha_history(1.5)}
    cell = View([c]).group("s", "NeuMoSync").ok[0]
    assert nt.cell_scales(cell)["1"] == {"sm": 0.5, "wc": 0.5, "gain": 0.0, "shift": 0.0}
    assert nt.saturation("sm", "1")(cell) == 1.0  # at a = 0.5, not the configured 1.0
    assert math.isnan(nt.saturation("gain")(cell))  # a = 0: no fixed cap
