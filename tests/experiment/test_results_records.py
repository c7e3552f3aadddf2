"""The typed result records (``avalanche_neumod.records``): round trips, errors, and the
migration of schema-1 cells, tested on cells committed with schema 1 (copied under
``data/`` from ``reports/transfer/run/cells`` and ``reports/stability_gap_suite/run/cells``
so the test outlives the reports' regeneration)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from avalanche_neumod.records import (
    SCHEMA_VERSION,
    CellResult,
    StabilityGapRecord,
    TransferRecord,
    migrate,
)

DATA = Path(__file__).parent / "data"
LOWER = {"avg_acc", "avg_min_acc", "wc_acc", "avg_sg", "avg_sg_abs"}


def _v1(name: str) -> dict:
    d = json.loads((DATA / name).read_text())
    assert d["schema_version"] == 1  # the fixture is a real schema-1 cell
    return d


def test_v1_transfer_cell_migrates_to_the_evaluation_scores():
    old = _v1("v1_transfer_cell.json")
    t_old = old["measures"]["transfer"]
    rec = CellResult.from_dict(old)
    t = rec.measures.transfer
    assert isinstance(t, TransferRecord) and rec.schema_version == SCHEMA_VERSION
    # the summaries computed once on migration equal the scores schema 1 stored
    for side in ("FKT", "BKT"):
        s = getattr(t, side)
        assert s.b == pytest.approx(t_old[side.lower()])
        for at in ("half", "beta", "mean"):
            assert getattr(s, at) == pytest.approx(t_old["scores"][f"{side}_{at}"])
    for k in ("LCA_0", "LCA_0_F", "LCA_0_B", "LCA_F", "LCA_B", "AvgFinalAcc", "AvgEndAcc"):
        assert getattr(t, k) == pytest.approx(t_old["scores"][k])
    assert t.LCA_F == pytest.approx(t_old["lca_f"]) and t.A_main == t_old["A_main"]
    # no copies left: each score once, under the evaluation's name
    d = rec.to_dict()
    assert not {"scores", "fkt", "bkt", "lca_0", "lca_f", "lca_b"} & set(d["measures"]["transfer"])
    assert d["metrics"] == old["metrics"] and d["config"] == old["config"]
    assert d["measures"]["activity"] == old["measures"]["activity"]
    # the new form reads back unchanged, without migrating again
    assert CellResult.from_dict(json.loads(json.dumps(d))) == rec


def test_v1_stability_gap_cell_migrates_to_the_evaluation_names():
    old = _v1("v1_stability_gap_cell.json")
    sg_old = old["measures"]["stability_gap"]
    sg = CellResult.from_dict(old).measures.stability_gap
    assert isinstance(sg, StabilityGapRecord)
    assert set(sg.scores) == {"delange", "ngm"}
    assert sg.curves == sg_old["curves"] and sg.boundaries == sg_old["boundaries"]
    for new, v1 in (("delange", "de_lange"), ("ngm", "ngm")):
        s, s1 = sg.scores[new], sg_old["scores"][v1]
        assert s.avg_ACC == s1["avg_acc"] and s.avg_SG == s1["avg_sg"]
        assert s.avg_min_ACC == s1["avg_min_acc"] and s.WC_ACC == s1["wc_acc"]
        assert s.get("WF10") == s1["WF10"]
        assert not LOWER & set(s.to_dict())
    assert sg.scores["ngm"].experience == sg_old["scores"]["ngm"]["experience"]


def test_migrate_keeps_an_unscored_transfer_record_unscored():
    old = _v1("v1_transfer_cell.json")
    t = old["measures"]["transfer"]
    for k in ("scores", "fkt", "bkt", "lca_0", "lca_0_f", "lca_0_b", "lca_f", "lca_b"):
        t.pop(k)
    new = migrate(old)["measures"]["transfer"]
    assert "FKT" not in new and "LCA_F" not in new and new["A_ref"] == t["A_ref"]
    assert not TransferRecord.from_dict(new).scored


def test_bad_input_gets_a_clear_error():
    old = _v1("v1_stability_gap_cell.json")
    with pytest.raises(ValueError, match="newer than this library"):
        CellResult.from_dict({**old, "schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(ValueError, match="migrate reads schema version 1"):
        migrate({**old, "schema_version": SCHEMA_VERSION})
    with pytest.raises(ValueError, match="missing config"):
        CellResult.from_dict({"cell_id": "x", "status": "ok"})
    bad = migrate(old)
    bad["measures"]["stability_gap"]["scores"]["other"] = {}
    with pytest.raises(ValueError, match="unknown convention"):
        CellResult.from_dict(bad)
    with pytest.raises(ValueError, match="missing A_ref"):
        TransferRecord.from_dict({"beta": 1, "tasks": [0], "A_main": [], "A_final": []})


def test_results_module_imports_nothing_heavy():
    code = (
        "import sys, avalanche_neumod.records; "
        "print(sorted(m for m in ('torch', 'avalanche', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_old_import_path_gives_the_same_records():
    """``avalanche_neumod.results`` (the documented path before the records module was
    named for what it holds) re-exports the same classes, not copies."""
    from avalanche_neumod import records, results

    assert results.CellResult is records.CellResult
    assert results.TransferRecord is records.TransferRecord
    assert results.migrate is records.migrate and results.SCHEMA_VERSION == records.SCHEMA_VERSION
