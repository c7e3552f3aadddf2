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
