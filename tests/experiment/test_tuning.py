"""Fair suites: the suite's optimizer for every method, a Naive row, and
per-method tuning on seeds disjoint from the reported ones."""

from __future__ import annotations

import json
import math

import pytest

from avalanche_neumod.experiment import tuning
from avalanche_neumod.experiment.launch import run_suite
from avalanche_neumod.experiment.run_folder import cell_files, cell_id_of, load_results
from avalanche_neumod.experiment.suite import SuiteError, expand, load_suite

HEAD = """
name: fair
seeds: [0]
defaults:
  model: {name: mlp, args: {hidden_sizes: [16]}}
  train: {mb_size: 8, epochs: 1}
  optimizer: {name: adam, lr: 0.001}
streams:
  toy: {name: "toy:toy_stream", args: {n_experiences: 2}}
"""


def _suite(tmp_path, body: str, preset: str = "cpu"):
    p = tmp_path / "fair.yaml"
    p.write_text(HEAD + body + "presets: {cpu: {}}\n")
    return load_suite(p, preset)


def test_suite_optimizer_applies_to_neumosync(tmp_path):
    s = _suite(tmp_path, "methods: {Naive: {}, NeuMoSync: {}, NGMSGD: {}}\n")
    cells = {c["method_key"]: c for c in expand(s)}
    # NeuMoSync trains with the suite's optimizer (it used to keep its own Adam 1e-3)
    assert cells["NeuMoSync"]["optimizer"] == {"name": "adam", "lr": 0.001}
    assert cells["Naive"]["optimizer"] == cells["NeuMoSync"]["optimizer"]
    # NGM-SGD's optimizer is its mechanism
    assert cells["NGMSGD"]["optimizer"] == {"name": "own"}


def test_neumosync_runs_with_the_suite_optimizer(tmp_path):
    from avalanche_neumod.experiment.cell import run_cell

    s = _suite(tmp_path, "methods: {Naive: {}, NeuMoSync: {}}\n")
    cfg = [c for c in expand(s) if c["method_key"] == "NeuMoSync"][0]
    r = run_cell(cfg)
    assert r["status"] == "ok", r.get("traceback")


def test_suite_without_naive_row_is_refused(tmp_path):
    with pytest.raises(SuiteError, match="has no Naive row"):
        _suite(tmp_path, "methods: {CBP: {}, NeuMoSync: {}}\n")


def test_implicit_other_optimizer_family_is_refused(tmp_path):
    body = "methods: {Naive: {optimizer: {name: sgd, lr: 0.01}}, CBP: {}}\n"
    with pytest.raises(SuiteError, match="one optimizer family"):
        _suite(tmp_path, body)
    # an explicit choice in the method's own mapping is an optimizer study: allowed
    body = "methods: {Naive: {optimizer: {name: sgd, lr: 0.01}}, CBP: {optimizer: {name: adam}}}\n"
    assert _suite(tmp_path, body)


TUNED = """
tune:
  seeds: [10, 11]
  target: {metric: avg_final_accuracy, mode: max}
methods:
  Naive: {tune: {lr: [0.0001, 0.01]}}
  CBP: {tune: {lr: [0.01], rho: [0.0, 0.1]}}
  ReDo: {}
"""


def test_tuning_seeds_must_be_disjoint(tmp_path):
    with pytest.raises(SuiteError, match=r"tuning seeds \[0\] are also reported seeds"):
        _suite(tmp_path, TUNED.replace("[10, 11]", "[0, 11]"))


def test_grid_without_tuning_seeds_and_bad_keys(tmp_path):
    with pytest.raises(SuiteError, match="no `tune: {seeds"):
        _suite(tmp_path, "methods: {Naive: {tune: {lr: [0.1]}}}\n")
    bad = TUNED.replace("rho: [0.0, 0.1]", "rhoo: [0.0]")
    with pytest.raises(SuiteError, match=r"unknown tune key 'rhoo'.*rho"):
        _suite(tmp_path, bad)
    with pytest.raises(SuiteError, match="non-empty list"):
        _suite(tmp_path, TUNED.replace("lr: [0.01]", "lr: 0.01"))
    with pytest.raises(SuiteError, match="mode"):
        _suite(tmp_path, TUNED.replace("mode: max", "mode: best"))


def test_only_declared_hyperparameters_may_be_tuned(tmp_path):
    # CBP declares rho, m and d: its constructor's other arguments (utility, init, ...) are
    # not a suite's to tune, though CBP takes them
    bad = TUNED.replace("rho: [0.0, 0.1]", "utility: [adaptable, contribution]")
    with pytest.raises(
        SuiteError,
        match=r"unknown tune key 'utility': CBP may tune lr, "
        r"optimizer.<setting>, d, m, rho \(its declaration's `tunable`\)",
    ):
        _suite(tmp_path, bad)
    assert _suite(tmp_path, TUNED.replace("rho: [0.0, 0.1]", "m: [10, 100]"))
    # a user's class declares nothing: every constructor argument may be tuned
    user = TUNED.replace("ReDo: {}", "U: {name: 'toy:SlowNaive', tune: {pause: [0.0, 0.1]}}")
    assert _suite(tmp_path, user)
    with pytest.raises(SuiteError, match=r"unknown tune key 'nope'.*pause"):
        _suite(tmp_path, user.replace("pause: [0.0", "nope: [0.0"))


def test_ownership_of_the_optimizer_comes_from_the_declaration(tmp_path):
    from avalanche_neumod.experiment import registry

    s = _suite(tmp_path, "methods: {Naive: {}, NeuMoSync: {}, NGMSGD: {}}\n")
    cells = {c["method_key"]: c for c in expand(s)}
    assert registry.builds_own_optimizer(cells["NGMSGD"])
    assert not registry.builds_own_optimizer(cells["NeuMoSync"])
    # the lr of a method that owns its optimizer is one of its arguments
    assert tuning.apply(cells["NGMSGD"], {"lr": 0.5})["method"]["args"]["lr"] == 0.5
    assert tuning.apply(cells["NeuMoSync"], {"lr": 0.5})["optimizer"]["lr"] == 0.5
    # "own" does not make a method that does not own its optimizer build one
    with pytest.raises(registry.RegistryError, match="unknown optimizer 'own'"):
        _suite(tmp_path, "methods: {Naive: {}, NeuMoSync: {optimizer: {name: own}}}\n")


def test_tuning_cells_and_apply(tmp_path):
    s = _suite(tmp_path, TUNED)
    cells = tuning.tuning_cells(s)
    # Naive 2 points + CBP 2 points, on 2 tuning seeds; ReDo has no grid
    assert len(cells) == 8
    assert {c["seed"] for c in cells} == {10, 11}
    assert all(c["cell_id"].startswith("tune__") for c in cells)
    assert len({c["cell_id"] for c in cells}) == 8
    cbp = [c for c in cells if c["method_key"] == "CBP" and c["tuning"]["index"] == 1][0]
    assert cbp["method"]["args"]["rho"] == 0.1 and cbp["optimizer"]["lr"] == 0.01
    assert cbp["optimizer"]["name"] == "adam"


def _fake(cfg, value, status="ok"):
    return {"config": cfg, "status": status, "metrics": {"avg_final_accuracy": value}}


def test_select_picks_best_mean_and_skips_diverged(tmp_path):
    s = _suite(tmp_path, TUNED)
    cells = tuning.tuning_cells(s)
    vals = {
        ("Naive", 0, 10): 0.5,
        ("Naive", 0, 11): 0.7,  # mean 0.6
        ("Naive", 1, 10): 0.9,
        ("Naive", 1, 11): 0.2,  # mean 0.55
        ("CBP", 0, 10): 0.1,
        ("CBP", 0, 11): 0.1,
        ("CBP", 1, 10): 0.99,
        ("CBP", 1, 11): 0.99,  # best, but one seed diverged
    }
    results = []
    for c in cells:
        key = (c["method_key"], c["tuning"]["index"], c["seed"])
        st = "diverged" if key == ("CBP", 1, 11) else "ok"
        results.append(_fake(c, vals[key], st))
    ch = tuning.select(s.tune, tuning.method_grids(s.methods), results)
    assert ch[("toy", "Naive")].point == {"lr": 0.0001}
    assert ch[("toy", "Naive")].score == pytest.approx(0.6)
    assert ch[("toy", "CBP")].point == {"lr": 0.01, "rho": 0.0}
    assert math.isnan(ch[("toy", "CBP")].scores[1])
    # mode min picks the other point
    t = dict(s.tune, target={"metric": "avg_final_accuracy", "mode": "min"})
    assert tuning.select(t, tuning.method_grids(s.methods), results)[("toy", "Naive")].point == {
        "lr": 0.01
    }
    # every point unusable: an error, not a silent default
    with pytest.raises(tuning.TuningError, match="no grid point"):
        tuning.select(
            s.tune, tuning.method_grids(s.methods), [_fake(c, 0.1, "failed") for c in cells]
        )


def test_run_tunes_first_then_reports_with_the_pick(tmp_path):
    s = _suite(tmp_path, TUNED)
    out = tmp_path / "run"
    run_suite(s, str(out), progress=False)
    res = load_results(out)
    tune_cells = [r for r in res if r["config"].get("tuning")]
    reported = [r for r in res if not r["config"].get("tuning")]
    assert len(tune_cells) == 8 and len(reported) == 3
    choices = json.loads((out / "tuning.json").read_text())["choices"]
    by_m = {c["method"]: c for c in choices}
    for r in reported:
        mk = r["config"]["method_key"]
        if mk == "ReDo":
            assert "tuned" not in r["config"]
            continue
        point = by_m[mk]["point"]
        assert r["config"]["tuned"]["point"] == point
        assert r["config"]["optimizer"]["lr"] == point["lr"]
        # the picked point has the best mean target over the tuning seeds
        scores = {}
        for t in tune_cells:
            if t["config"]["method_key"] == mk:
                i = t["config"]["tuning"]["index"]
                scores.setdefault(i, []).append(t["metrics"]["avg_final_accuracy"])
        best = max(scores, key=lambda i: (sum(scores[i]) / 2, -i))
        assert tuning.points(tuning.method_grids(s.methods)[mk])[best] == point
    # resumable: a second invocation skips every finished cell (tuning ones included)
    summ = run_suite(s, str(out), progress=False, resume=True)
    assert summ.statuses == {} and len(summ.skipped) == 3


def test_report_lists_grid_choice_and_score(tmp_path):
    from avalanche_neumod.reporting import write_report

    s = _suite(tmp_path, TUNED.replace("  CBP: {tune: {lr: [0.01], rho: [0.0, 0.1]}}\n", ""))
    out = tmp_path / "run"
    run_suite(s, str(out), progress=False)
    md = write_report(out, tmp_path / "rep").read_text()
    sec = md.split("## Optimizers and tuning")[1].split("\n## ")[0]
    choice = json.loads((out / "tuning.json").read_text())["choices"][0]
    naive = [r for r in sec.splitlines() if "| Naive |" in r][0]
    assert "lr ∈ {0.0001, 0.01}" in naive
    assert f"lr={choice['point']['lr']}" in naive
    assert f"{100 * choice['score']:.2f} (all points:" in naive
    assert f"adam lr={choice['point']['lr']}" in naive
    redo = [r for r in sec.splitlines() if "| ReDo |" in r][0]
    assert "not tuned" in redo
    # the tuning cells are not reported seeds, and do not count as mixed configurations
    assert "seeds [0]" in md
    assert "different configurations" not in md


def test_given_optimizer_reaches_every_neumosync_parameter():
    """NeuMoSync on the suite's optimizer trains theta, the neuron features and NeuroSync:
    the optimizer built over the main network receives every trainable parameter."""
    import torch
    from avalanche.training.plugins import EvaluationPlugin
    from toy import toy_stream

    from avalanche_neumod.models import MLP
    from avalanche_neumod.training.neumosync import NeuMoSync

    m = MLP(input_size=8, hidden_sizes=[16], num_classes=4)
    opt = torch.optim.SGD(m.parameters(), lr=0.01)
    s = NeuMoSync(model=m, optimizer=opt, train_mb_size=8, evaluator=EvaluationPlugin(loggers=[]))
    s.train(toy_stream().train_stream[0])
    in_opt = {id(p) for g in s.optimizer.param_groups for p in g["params"]}
    trainable = {id(p) for p in s.model.parameters() if p.requires_grad}
    assert s.optimizer is opt and len(trainable) > 4 and trainable <= in_opt


def test_select_per_suite_pools_the_streams(tmp_path):
    body = TUNED.replace("  target:", "  per: suite\n  target:")
    p = tmp_path / "two.yaml"
    p.write_text(
        HEAD.replace(
            'streams:\n  toy: {name: "toy:toy_stream", args: {n_experiences: 2}}\n',
            'streams:\n  toy: {name: "toy:toy_stream", args: {n_experiences: 2}}\n'
            '  toy2: {name: "toy:toy_stream", args: {n_experiences: 2, dim: 6}}\n',
        )
        + body
        + "presets: {cpu: {}}\n"
    )
    s = load_suite(p)
    cells = [c for c in tuning.tuning_cells(s) if c["method_key"] == "Naive"]
    # point 0 wins on toy, point 1 on toy2 by more: pooled over streams, point 1
    val = {("toy", 0): 0.6, ("toy", 1): 0.5, ("toy2", 0): 0.2, ("toy2", 1): 0.5}
    res = [_fake(c, val[(c["stream_key"], c["tuning"]["index"])]) for c in cells]
    ch = tuning.select(s.tune, tuning.method_grids(s.methods), res)
    assert list(ch) == [("*", "Naive")] and ch[("*", "Naive")].point == {"lr": 0.01}
    rep = tuning.reported_cells(s, ch, methods=["Naive"])
    assert {c["optimizer"]["lr"] for c in rep} == {0.01} and len(rep) == 2


def test_select_matches_points_not_indices_when_the_grid_axes_are_reordered():
    """A report reads the grid back from the manifest's JSON, whose axis order may differ
    from the YAML's: the choice must be the same point with the same score."""
    from avalanche_neumod.experiment.tuning import points, select

    grid = {"ema_decay": [0.99, 0.999], "lr": [0.01, 0.03]}
    scores = {(0.99, 0.01): 0.1, (0.999, 0.01): 0.9, (0.99, 0.03): 0.3, (0.999, 0.03): 0.2}
    results = [
        {
            "status": "ok",
            "config": {
                "stream_key": "s",
                "method_key": "M",
                "tuning": {"point": pt, "index": i},
            },
            "metrics": {"avg_accuracy": scores[(pt["ema_decay"], pt["lr"])]},
        }
        for i, pt in enumerate(points(grid))
    ]
    tune = {"target": {"metric": "avg_accuracy", "mode": "max"}}
    a = select(tune, {"M": grid}, results)[("s", "M")]
    b = select(tune, {"M": {"lr": [0.01, 0.03], "ema_decay": [0.99, 0.999]}}, results)[("s", "M")]
    assert a.point == b.point == {"ema_decay": 0.999, "lr": 0.01}
    assert a.score == b.score == 0.9


# ---- the reviewer's protocol: one shared grid, successive halving, extension on edges ----

PROTOCOL = """
tune:
  seeds: [10, 11]
  target: {metric: avg_final_accuracy, mode: max}
  grid: {lr: [0.001, 0.003, 0.01]}
  keep: 2
  extend: 2
methods:
  Naive: {}
  CBP: {tune: {lr: [0.5], rho: [0.0, 0.1]}}
"""


def _drive(suite, value):
    """Run the procedure on fake results ``value(method, point, seed)`` until it settles;
    returns (choices, every tuning cell config that was asked for)."""
    asked, results = [], []
    cells = tuning.tuning_cells(suite)
    while cells:
        asked += cells
        results += [
            _fake(c, value(c["method_key"], c["tuning"]["point"], c["seed"])) for c in cells
        ]
        cells = tuning.next_cells(suite, results)
    grids = {k: (m or {}).get("tune") or {} for k, m in suite.methods.items()}
    return tuning.select(suite.tune, grids, results), asked


def _peak(at: float):
    """A score peaking at lr = ``at`` (log-distance), the same on every seed."""
    return lambda m, p, s: 1.0 - abs(math.log10(p["lr"]) - math.log10(at)) / 10


def test_step_out_continues_the_log_spacing():
    assert tuning.step_out([0.001, 0.003, 0.01, 0.03, 0.1], +1) == 0.3
    assert tuning.step_out([0.001, 0.003, 0.01, 0.03, 0.1], -1) == 0.0003
    assert tuning.step_out([0.003, 0.01, 0.03], +1) == 0.1
    assert tuning.step_out([1.0, 2.0, 4.0], +1) == 8.0 and tuning.step_out([1, 2, 4], -1) == 0.5
    assert tuning.step_out([0.01, 0.1], +1) == 1.0
    assert tuning.extendable([0.025, 0.05, 0.1]) and not tuning.extendable([0.9, 0.99, 0.999])
    assert not tuning.extendable([0.1, 0.01]) and not tuning.extendable([0.0, 0.1])


def test_shared_grid_replaces_a_methods_own_axis_and_comes_first(tmp_path):
    s = _suite(tmp_path, PROTOCOL)
    grids = tuning.method_grids(s.methods, s.tune)
    assert grids["Naive"] == {"lr": [0.001, 0.003, 0.01]}
    assert list(grids["CBP"]) == ["lr", "rho"] and grids["CBP"]["lr"] == [0.001, 0.003, 0.01]
    cells = tuning.tuning_cells(s)
    # with `keep`, the first round is every point on the first tuning seed only
    assert {c["seed"] for c in cells} == {10} and len(cells) == 3 + 6


def test_edge_choice_extends_the_grid_until_interior(tmp_path):
    s = _suite(tmp_path, PROTOCOL.replace("  CBP: {tune: {lr: [0.5], rho: [0.0, 0.1]}}\n", ""))
    ch, asked = _drive(s, _peak(0.03))
    c = ch[("toy", "Naive")]
    # 0.01 (top edge) -> 0.03 added -> still the edge -> 0.1 added -> 0.03 is interior
    assert c.grid == {"lr": [0.001, 0.003, 0.01, 0.03, 0.1]}
    assert c.point == {"lr": 0.03} and c.edges == [] and c.extended
    assert [(e["axis"], e["value"], e["round"]) for e in c.extensions] == [
        ("lr", 0.03, 1),
        ("lr", 0.1, 2),
    ]
    assert c.base_grid == {"lr": [0.001, 0.003, 0.01]}
    # successive halving: every point on seed 10, only the top 2 of the final grid on 11
    on_11 = sorted(p["tuning"]["point"]["lr"] for p in asked if p["seed"] == 11)
    assert {p["tuning"]["point"]["lr"] for p in asked if p["seed"] == 10} == set(c.grid["lr"])
    assert set(on_11) == {0.003, 0.01, 0.03}  # the top 2 of each round
    assert [c.grid["lr"][i] for i in c.kept] == [0.01, 0.03]
    assert c.per_seed[11][0] is None and c.per_seed[10][0] is not None
    assert math.isnan(c.scores[0]) and c.n_cells[c.kept[0]] == 2
    # every asked-for cell is one the suite can recognise (a later --resume keeps it)
    assert all(tuning.admissible(s, "Naive", p["tuning"]["point"]) for p in asked)
    assert not tuning.admissible(s, "Naive", {"lr": 3.0})


def test_extension_budget_and_unextendable_axes_leave_the_edge_recorded(tmp_path):
    s = _suite(tmp_path, PROTOCOL.replace("extend: 2", "extend: 1"))
    ch, _ = _drive(s, _peak(10.0))
    c = ch[("toy", "Naive")]
    assert c.grid["lr"][-1] == 0.03 and c.point == {"lr": 0.03} and c.edges == ["lr"]
    # an axis that is not log-spaced is never extended; the pick is flagged on its edge
    s = _suite(tmp_path, PROTOCOL.replace("rho: [0.0, 0.1]", "rho: [0.0, 0.1, 0.2]"))
    ch, _ = _drive(s, lambda m, p, sd: p.get("rho", 0) - abs(math.log10(p["lr"]) + 2.5) / 10)
    c = ch[("toy", "CBP")]
    assert c.grid["rho"] == [0.0, 0.1, 0.2] and c.point["rho"] == 0.2 and "rho" in c.edges
    assert c.point["lr"] == 0.003 and "lr" not in c.edges


def test_choice_is_the_best_mean_over_both_seeds_not_the_first_seeds_best(tmp_path):
    s = _suite(tmp_path, PROTOCOL.replace("extend: 2", "extend: 0"))
    table = {(0.001, 10): 0.1, (0.003, 10): 0.9, (0.01, 10): 0.8, (0.003, 11): 0.1, (0.01, 11): 0.7}
    ch, asked = _drive(s, lambda m, p, sd: table.get((p["lr"], sd), 0.0))
    c = ch[("toy", "Naive")]
    assert c.point == {"lr": 0.01} and c.score == pytest.approx(0.75)
    assert not any(p["seed"] == 11 and p["tuning"]["point"]["lr"] == 0.001 for p in asked)


def test_run_extends_and_resumes_with_the_later_rounds_cells(tmp_path):
    body = (
        PROTOCOL.replace("[0.001, 0.003, 0.01]", "[1.0e-7, 1.0e-6]")
        .replace("extend: 2", "extend: 1")
        .replace("  CBP: {tune: {lr: [0.5], rho: [0.0, 0.1]}}\n", "")
    )
    s = _suite(tmp_path, body)
    out = tmp_path / "run"
    run_suite(s, str(out), progress=False)
    (choice,) = json.loads((out / "tuning.json").read_text())["choices"]
    # at such small rates the pick is on an edge: the grid grew by one value
    assert len(choice["extensions"]) == 1 and len(choice["grid"]["lr"]) == 3
    res = load_results(out)
    tuned = [r["config"] for r in res if r["config"].get("tuning")]
    assert len([c for c in tuned if c["seed"] == 10]) == 3  # every point of the final grid
    assert 2 <= len([c for c in tuned if c["seed"] == 11]) <= 3  # the top 2 of each round
    (rep,) = [r for r in res if not r["config"].get("tuning")]
    assert rep["config"]["tuned"]["point"] == choice["point"]
    summ = run_suite(s, str(out), progress=False, resume=True)
    assert summ.statuses == {}
    # the report's tuning table says how the search went, and every per-seed score
    from avalanche_neumod.reporting import write_report

    md = write_report(out, tmp_path / "rep").read_text()
    sec = md.split("## Optimizers and tuning")[1].split("\n## ")[0]
    (row,) = [r for r in sec.splitlines() if r.startswith("| toy | Naive |")]
    ext = choice["extensions"][0]
    assert f"extended: lr + {ext['value']} (round 1)" in row
    assert "10 (all points); 11 (top 2 of 3)" in row
    details = sec.split("<details>")[1]
    assert "| point | seed 10 | seed 11 | mean |" in details
    picked = [r for r in details.splitlines() if "**chosen**" in r]
    assert len(picked) == 1 and f"lr={choice['point']['lr']} |" in picked[0]
    assert f"{100 * choice['score']:.2f}" in picked[0]


@pytest.mark.parametrize("name", ["plasticity", "transfer", "recurring", "ablation", "maml"])
@pytest.mark.parametrize("preset", ["lab", "paper"])
def test_lab_and_paper_presets_tune_as_a_reviewer_accepts(name, preset):
    """One extendable lr grid of >= 5 log-spaced values for every method, >= 3 values on
    every method-specific axis, >= 2 tuning seeds for the competing points, extension on."""
    s = load_suite(name, preset)
    st = tuning.tune_settings(s.tune)
    assert len(st["seeds"]) >= 2 and st["keep"] >= 2 and st["extend"] >= 1
    grids = tuning.method_grids(s.methods, s.tune)
    assert set(grids) == set(s.methods)
    (lr,) = {tuple(g["lr"]) for g in grids.values()}
    assert len(lr) >= 5 and tuning.extendable(list(lr))
    for mk, g in grids.items():
        assert all(len(v) >= 3 for k, v in g.items() if k != "lr"), (mk, g)
    if preset == "lab":  # memorisation streams at the epochs where Naive fits task 1
        rl = [x for k, x in s.streams.items() if "random_label" in k]
        assert rl and all(x["train"]["epochs"] == 400 for x in rl)


def test_a_later_round_resumes_when_an_axis_sorts_before_lr(tmp_path):
    """Stored configurations sort a point's keys ("lam" before "lr"); a cell of a later
    round, rebuilt from its stored point, must get back the id it was written under, so
    the next round and ``--resume`` take it as this suite's (a lab run stopped here)."""
    p = tmp_path / "order.yaml"
    p.write_text(
        """
name: order
description: an axis that sorts before lr, two tuning rounds.
seeds: [0]
defaults:
  model: {name: mlp, args: {hidden_sizes: [8]}}
  train: {mb_size: 8, epochs: 1}
tune: {seeds: [100, 101], grid: {lr: [0.01, 0.03]}, keep: 2, target: {metric: avg_accuracy}}
streams:
  toy: {name: "toy:toy_stream", args: {n_experiences: 2}}
methods:
  FastNaive: {}
  L2Init: {tune: {lam: [0.001, 0.01]}}
presets:
  cpu: {}
"""
    )
    suite = load_suite(p)
    out = tmp_path / "run"
    run_suite(suite, str(out), progress=False)
    ids = {cell_id_of(f) for f in cell_files(out)}
    second = [i for i in ids if i.startswith("tune__toy__L2Init__lr") and i.endswith("seed101")]
    assert len(second) == 2  # the kept points ran on the second tuning seed
    again = run_suite(suite, str(out), progress=False, resume=True)
    assert again.statuses == {}  # nothing left to run, nothing refused


REQUIRED = TUNED.replace(
    "  target: {metric: avg_final_accuracy, mode: max}\n",
    "  target: {metric: avg_final_accuracy, mode: max}\n"
    "  require: {metric: accuracy_matrix.0.0, min: 0.95, streams: [toy]}\n",
)


def _fitted(cfg, value, first_task):
    """A tuning result whose task 1 reached ``first_task`` right after training on it."""
    r = _fake(cfg, value)
    r["metrics"]["accuracy_matrix"] = [[first_task, 0.1], [0.5, 0.9]]
    return r


def test_require_excludes_points_that_do_not_fit_the_first_task(tmp_path):
    """A point whose task-1 accuracy right after training is below ``require.min`` scores
    NaN and is never picked, however good its target; on a stream the rule does not name
    the same results pick the best target."""
    s = _suite(tmp_path, REQUIRED)
    cells = [c for c in tuning.tuning_cells(s) if c["method_key"] == "Naive"]
    # lr 0.0001: the better target (0.8) but task 1 only 0.83 (under-trained); lr 0.01 fits
    first = {0: 0.83, 1: 1.0}
    value = {0: 0.8, 1: 0.6}
    results = [_fitted(c, value[c["tuning"]["index"]], first[c["tuning"]["index"]]) for c in cells]
    ch = tuning.select(s.tune, tuning.method_grids(s.methods), results)[("toy", "Naive")]
    assert ch.point == {"lr": 0.01} and ch.score == pytest.approx(0.6)
    assert math.isnan(ch.scores[0])
    other = dict(s.tune, require={**s.tune["require"], "streams": ["elsewhere"]})
    assert tuning.select(other, tuning.method_grids(s.methods), results)[
        ("toy", "Naive")
    ].point == {"lr": 0.0001}
    # the rule is >=: exactly the threshold passes
    results = [_fitted(c, value[c["tuning"]["index"]], 0.95) for c in cells]
    ch = tuning.select(s.tune, tuning.method_grids(s.methods), results)[("toy", "Naive")]
    assert ch.point == {"lr": 0.0001}
    # no point fits: a clear error naming the rule, not a silent pick
    results = [_fitted(c, 0.5, 0.2) for c in cells]
    with pytest.raises(tuning.TuningError, match="misses tune.require"):
        tuning.select(s.tune, tuning.method_grids(s.methods), results)


@pytest.mark.parametrize(
    "require, match",
    [
        ("{metric: accuracy_matrix.0.0}", "tune.require.min must be a number"),
        ("{min: 0.95}", "tune.require.metric"),
        ("{metric: a, min: 0.9, streams: toy}", "tune.require.streams must be a list"),
        ("{metric: a, min: 0.9, stream: [toy]}", "stream"),
        ("0.95", "tune.require must be a mapping"),
        ("{metric: a, min: 0.9, streams: [toys]}", r"names \['toys'\], not streams"),
    ],
)
def test_bad_require_is_refused_at_load(tmp_path, require, match):
    body = TUNED.replace(
        "  target: {metric: avg_final_accuracy, mode: max}\n",
        f"  target: {{metric: avg_final_accuracy, mode: max}}\n  require: {require}\n",
    )
    with pytest.raises(SuiteError, match=match):
        _suite(tmp_path, body)


@pytest.mark.parametrize("name", ["plasticity", "transfer", "recurring", "ablation", "maml"])
def test_lab_requires_every_memorisation_stream_to_fit_task_1(name):
    """At `lab` every memorisation stream of the suite is under the task-1 fit rule (issue
    24: at least 95 % on task 1), and no other stream is."""
    s = load_suite(name, "lab")
    req = tuning.tune_settings(s.tune)["require"]
    assert req["metric"] == "accuracy_matrix.0.0" and req["min"] == 0.95
    memorisation = {k for k in s.streams if "random_label" in k}
    assert memorisation and memorisation <= set(req["streams"])
    assert not set(req["streams"]) & {k for k in s.streams if "random_label" not in k}
