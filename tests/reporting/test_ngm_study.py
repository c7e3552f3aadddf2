"""The NGM-SGD study as the ``ngm`` preset of the ``stability_gap`` suite, and its report
section (``reporting/ngm_study.py``)."""

from __future__ import annotations

import inspect
import math

import pytest
from cell_dicts import cell_dict

from avalanche_neumod.experiment.cell import run_cell_to_file
from avalanche_neumod.experiment.suite import expand, load_suite
from avalanche_neumod.models.ngm_mlp import ngm_mlp
from avalanche_neumod.reporting import ngm_study
from avalanche_neumod.reporting.report import write_report
from avalanche_neumod.reporting.run_view import View

AUTHORS = {  # stream -> (iterations per experience, NGM-SGD's eta)
    "split_mnist": (200, 0.4),
    "ngm_permuted_mnist": (200, 0.3),
    "rotated_mnist": (400, 0.5),
}


def test_ngm_preset_expands_to_the_authors_protocol():
    suite = load_suite("stability_gap", "ngm")  # loading runs check_fair: a Naive row exists
    assert suite.seeds == [0, 1, 2, 3, 4]
    assert list(suite.streams) == ["split_mnist", "rotated_mnist", "ngm_permuted_mnist"]
    cells = expand(suite)
    assert len(cells) == 3 * 4 * 5
    assert inspect.signature(ngm_mlp).parameters["hidden_sizes"].default == (400, 400)
    by = {(c["stream_key"], c["method_key"]): c for c in cells if c["seed"] == 0}
    for (stream, method), c in by.items():
        iters, eta = AUTHORS[stream]
        assert c["stream"]["args"] == {"iterations": iters, "batch_size": 128}
        assert c["train"]["mb_size"] == "stream" and c["train"]["epochs"] == 1
        assert c["model"] == {"name": "ngm_mlp", "args": {}}  # 784-400-400-10
        assert c["metrics"] == {
            "stability_gap": {"eval_every": 1, "samples_per_exp": 1000, "tracked": [0]}
        }
        if method == "NGM-SGD":
            assert c["method"]["name"] == "NGMSGD" and c["optimizer"] == {"name": "own"}
            assert c["method"]["args"] == {
                "eta": eta,
                "lr": 0.01,
                "gamma": 0.9,
                "g0": 1.0,
                "g_init": "one",
            }
        else:
            assert c["method"]["name"] == "FastNaive" and c["method"]["args"] == {}
    want = {
        "SGD": {"name": "sgd", "lr": 0.01},
        "momentum-SGD": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
        "Adam": {"name": "adam", "lr": 0.01},
    }
    for method, opt in want.items():
        assert all(by[(s, method)]["optimizer"] == opt for s in AUTHORS)
    # plain SGD is the suite's Naive row, and says so
    assert by[("split_mnist", "SGD")]["method_label"] == "SGD (Naive)"


def _tiny_cells(seeds: list[int]) -> list[dict]:
    cells = expand(load_suite("stability_gap", "ngm"), seeds=seeds, streams=["split_mnist"])
    for c in cells:
        c["stream"]["args"].update(iterations=3, train_size=600, test_size=200)
        c["metrics"]["stability_gap"]["samples_per_exp"] = 40
    return cells


def test_tiny_run_of_the_preset_writes_the_study_sections(data_root, tmp_path):
    run = tmp_path / "run"
    for cfg in _tiny_cells([0, 1]):
        assert run_cell_to_file(cfg, str(run), root=str(data_root))["status"] == "ok"
    out = tmp_path / "report"
    md = write_report(run, out).read_text()
    section = md[md.index("## Stability gap (NGM-SGD's study format") :]
    assert "### Split-MNIST" in section
    assert "5 experiences x 3 iterations, batch 128, NGM-SGD's eta = 0.4." in section
    header = "| method | seeds | avg-ACC | avg-min-ACC | WC-ACC | avg-SG | avg-SG (abs, points) |"
    assert header in section and "min-ACC (De Lange) | final avg acc (all tasks) |" in section
    for label in ("NGM-SGD", "SGD (Naive)", "momentum-SGD", "Adam"):
        assert f"| {label} | 2 | " in section
    assert "Scored on the seed-mean curve:" in section
    # two seeds: differences are stated, no verdict is drawn
    assert "- vs Adam: avg-SG " in section and "**too few seeds**" in section
    assert "cannot be decided (too few paired seeds)" in section
    diffs = section[section.index("### Where this differs from the authors' runs") :]
    assert "Split-MNIST: 5 x 3 iterations, eta 0.4; the authors' 5 x 200, eta 0.4." in diffs
    assert "a seeded subset of 40 images" in diffs and "42..46" in diffs
    for fig in ("task1_accuracy.png", "task1_after_switch.png", "ngm_gains.png"):
        assert (out / fig).stat().st_size > 5000 and f"]({fig})" in md


def _cell(method, seed, sg, acc=0.9, wc=0.8, name="FastNaive", opt=None):
    scores = {"avg_SG": sg, "avg_SG_abs": sg, "avg_ACC": acc, "WC_ACC": wc, "avg_min_ACC": wc}
    scores["avg_recovery"] = float("nan")
    sg_record = {
        "scores": {"ngm": scores, "delange": scores},
        "curves": {"0": {"x": [0, 1, 2, 3, 4], "acc": [0.1, 0.5, 0.9, 0.5, 0.8]}},
        "boundaries": [0, 2],
        "samples_per_exp": None,
        "eval_every": 1,
        "tracked": [0],
    }
    return cell_dict(
        "s",
        method,
        seed,
        name=name,
        acc=acc,
        measures={"stability_gap": sg_record},
        optimizer=opt or {"name": "own"},
    )


ADAM = {"name": "adam", "lr": 0.01}
MSGD = {"name": "sgd", "lr": 0.01, "momentum": 0.9}


def _view(ngm_sg, adam_sg, msgd_sg, ngm_acc=None) -> View:
    rs = []
    for s in range(len(ngm_sg)):
        acc = 0.9 if ngm_acc is None else ngm_acc[s]
        rs.append(_cell("NGM-SGD", s, ngm_sg[s], acc=acc, name="NGMSGD"))
        rs.append(_cell("A", s, adam_sg[s], opt=ADAM))
        rs.append(_cell("M", s, msgd_sg[s], opt=MSGD))
    return View(rs)


def test_claims_come_from_the_paired_intervals_not_the_sign():
    # NGM's avg-SG is lower than A's on average (-2 points) but not in every seed: the
    # interval includes 0, so no verdict; against M it is lower by ~10 points in every seed
    ngm = [0.10, 0.30, 0.05, 0.25, 0.12]
    adam = [0.20, 0.10, 0.15, 0.20, 0.27]
    msgd = [0.21, 0.39, 0.16, 0.34, 0.22]
    lines = ngm_study.claim_lines(_view(ngm, adam, msgd), "s")
    vs_a = next(x for x in lines if x.startswith("- vs A:"))
    vs_m = next(x for x in lines if x.startswith("- vs M:"))
    assert vs_a.startswith("- vs A: avg-SG -2.0 points [95% bootstrap CI -")
    assert "→ **no detectable difference**; avg-ACC" in vs_a
    assert "avg-SG -10.0 points" in vs_m and "→ **better (smaller gap)**" in vs_m
    assert "avg-ACC +0.0 points" in vs_m and "→ **no detectable difference**" in vs_m
    # the claim holds against momentum-SGD only
    assert lines[-1] == (
        "- The paper's claim on this stream (a smaller avg-SG than Adam and momentum-SGD, at "
        "avg-ACC not detectably lower) is **partly supported**: it holds against momentum-SGD."
    )
    # a gap detectably smaller against both, but an accuracy detectably lower: not supported
    low = [0.80, 0.81, 0.79, 0.80, 0.82]
    lines = ngm_study.claim_lines(_view(ngm, [v + 0.1 for v in ngm], msgd, low), "s")
    assert "avg-ACC -9.6 points" in lines[0] and "→ **worse**" in lines[0]
    assert lines[-1].endswith("is **not supported**.")


def test_undefined_scores_are_counted_and_left_out():
    nan = math.nan
    view = _view([0.1, nan, 0.4], [0.2, 0.2, 0.2], [0.2, 0.2, 0.2])
    table = ngm_study.score_table(view, "s")
    row = next(r for r in table.splitlines() if r.startswith("| NGM-SGD |"))
    assert "| 25.0 ± " in row and "[1 NaN]" in row
    # two seeds are defined on both sides: too few for a verdict
    (vs_a, *_) = ngm_study.claim_lines(view, "s")
    assert vs_a.startswith("- vs A: avg-SG +5.0 points [")
    assert "1+/1- of 2 seeds → **too few seeds**; avg-ACC" in vs_a


def test_mean_curve_table_scores_the_seed_mean_curve():
    view = _view([0.1, 0.2], [0.2, 0.2], [0.2, 0.2])
    curve = view.group("s", "A").cells[1].measures.stability_gap.curves["0"]
    curve["acc"] = [0.1, 0.5, 0.9, 0.7, 0.8]
    row = next(r for r in ngm_study.mean_curve_table(view, "s").splitlines() if "| A |" in r)
    # mean curve 0.1, 0.5, 0.9 | 0.6, 0.8 (switch at 2): block finals 0.9, 0.8; block-0
    # minimum 0.5; WC = 0.8 / 2 + 0.5 / 2; SG_1 = (0.9 - 0.6) / 0.9, abs 30 points
    assert row == "| A | 85.0 | 50.0 | 65.0 | 33.3 | 30.0 |"


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        (("eval_every", 5), "every 5 updates"),
        (("tracked", [0, 1]), "Every seen experience is tracked"),
        (("samples_per_exp", 300), "a seeded subset of 300 images"),
    ],
)
def test_differences_name_each_departure(change, expect):
    view = _view([0.1, 0.2], [0.2, 0.2], [0.2, 0.2])
    assert not any(expect in d for d in ngm_study.differences(view))
    for c in view.results:
        setattr(c.measures.stability_gap, change[0], change[1])
    assert any(expect in d for d in ngm_study.differences(view))


def test_hand_written_notes_survive_regeneration(tmp_path):
    from avalanche_neumod.experiment.run_folder import write_json_atomic

    run = tmp_path / "run"
    for c in _view([0.1, 0.2], [0.2, 0.2], [0.2, 0.2]).results:
        c.timings = {"total_s": 1.0}
        write_json_atomic(run / "cells" / f"{c.cell_id}.json", c.to_dict())
    out = tmp_path / "rep"
    assert "## Notes" not in write_report(run, out).read_text()
    (out / "notes.md").write_text("The earlier study gave 3.1.\n")
    for _ in range(2):
        md = write_report(run, out).read_text()
        assert md.endswith("## Notes (hand-written, `notes.md`)\n\nThe earlier study gave 3.1.\n")


def test_stability_gap_subsets_are_drawn_with_the_cells_seed():
    import torch

    from avalanche_neumod.benchmarks.tensor_data import tensor_benchmark
    from avalanche_neumod.experiment.measures import StabilityGap
    from avalanche_neumod.tensors import ExperienceTensors

    sets = [ExperienceTensors(torch.arange(100.0)[:, None], torch.zeros(100), 0)] * 2
    bm = tensor_benchmark(sets, sets)

    def subset(args: dict, seed: int) -> list[float]:
        (metric,) = StabilityGap({"samples_per_exp": 10, **args}, bm, {}, {"seed": seed}).metrics()
        return metric.evaluator.subsets[0].x.flatten().tolist()

    assert subset({}, 3) == subset({"seed": 3}, 0)  # default: the cell's seed
    assert subset({}, 3) != subset({}, 4)
