"""The paper's numbers beside ours: the stored values are the excerpt's, and the report
prints them next to the matching rows."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from cell_dicts import cell_dict

from avalanche_neumod.reporting import View, paper_values

REPO = Path(__file__).resolve().parents[2]
EXCERPT = Path("/work/shared/papers/neumosync_excerpt.txt")


def test_stored_values_are_the_excerpts_transcription():
    if not EXCERPT.exists():
        pytest.skip(f"{EXCERPT} is not on this machine")
    spec = importlib.util.spec_from_file_location(
        "paper_values_script", REPO / "benchmarks" / "scripts" / "paper_values.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.transcribe(EXCERPT) == paper_values.FILE.read_text()


def test_known_paper_values():
    d = paper_values.load()
    t1 = d["neumosync_table1"]["streams"]
    assert t1["random_label_mnist"]["NeuMoSync"]["LCA_F"] == [18.81, 0.59]
    assert t1["permuted_mnist"]["CBP"]["avg_final_accuracy"] == [69.21, 0.27]
    assert "CReLU" not in t1["class_split_cifar100"]  # the paper has no such row
    t2 = d["neumosync_table2"]["streams"]
    assert t2["random_label_cifar10"]["MAML"] == {"LCA_F": 0.12, "accuracy": 0.21}
    assert "source" in d["neumosync_table1"] and "source" in d["neumosync_table2"]


def _transfer(lca_f):
    s = {"b": [0.0], "half": 0.0, "beta": 0.0, "mean": 0.0}
    return {
        "transfer": {
            "beta": 0,
            "tasks": [0, 1],
            **{k: [] for k in ("A_main", "A_final", "A_ref", "final_acc", "end_acc")},
            "FKT": s,
            "BKT": s,
            **{k: lca_f for k in ("LCA_0", "LCA_0_F", "LCA_0_B", "LCA_F", "LCA_B")},
            "AvgFinalAcc": None,
            "AvgEndAcc": None,
        }
    }


def test_tables_print_ours_beside_the_papers():
    cells = []
    for m in ("Naive", "NeuMoSync", "MAML"):
        for seed in (0, 1):
            c = cell_dict("rl", m, seed, acc=0.5, measures=_transfer(0.2 + 0.01 * seed))
            c["config"]["stream"] = {"name": "random_label_mnist", "args": {}}
            cells.append(c)
    view = View(cells)
    t1 = paper_values.table1_beside_paper(view)
    lines = t1.splitlines()
    ours = [i for i, r in enumerate(lines) if "| NeuMoSync | ours |" in r]
    assert len(ours) == 1 and "| paper | 3.00 (0.76) |" in lines[ours[0] + 1]
    assert "| Naive |" not in t1  # no paper row for it
    t2 = paper_values.table2_beside_paper(view)
    row = [r for r in t2.splitlines() if "| MAML |" in r][0]
    assert row.startswith("| rl | MAML | 0.21 ± ") and row.endswith("| 0.12 | 0.50 ± 0.00 | 0.20 |")
