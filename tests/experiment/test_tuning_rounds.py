"""Tuning plans rounds of cells and the launcher runs them: the cells of every round, the
picks and a resumed run are those the suite's procedure (successive halving, extension on
edges, replay from stored results) gives. The expected rounds were recorded from the
launcher as it ran tuning before the planner was split from it (one manifest invocation
per round, then the reported cells)."""

from __future__ import annotations

import json
import math

import pytest
from test_tuning import HEAD, PROTOCOL, TUNED

from avalanche_neumod.experiment import launch, tuning
from avalanche_neumod.experiment.run_folder import cell_path, load_manifest, write_json_atomic
from avalanche_neumod.experiment.suite import load_suite

PROTOCOL_ROUNDS = [
    [
        "Naive__lr0.001__seed10",
        "Naive__lr0.003__seed10",
        "Naive__lr0.01__seed10",
        "CBP__lr0.001_rho0.0__seed10",
        "CBP__lr0.001_rho0.1__seed10",
        "CBP__lr0.003_rho0.0__seed10",
        "CBP__lr0.003_rho0.1__seed10",
        "CBP__lr0.01_rho0.0__seed10",
        "CBP__lr0.01_rho0.1__seed10",
    ],
    # keep: 2 -> the top 2 points of each method on the second tuning seed
    ["Naive__lr0.003__seed11", "Naive__lr0.01__seed11"]
    + ["CBP__lr0.01_rho0.0__seed11", "CBP__lr0.01_rho0.1__seed11"],
    # the pick sits on the top edge of lr: 0.03 is added ...
    ["Naive__lr0.03__seed10", "CBP__lr0.03_rho0.0__seed10", "CBP__lr0.03_rho0.1__seed10"],
    ["Naive__lr0.03__seed11", "CBP__lr0.03_rho0.0__seed11", "CBP__lr0.03_rho0.1__seed11"],
    # ... still the edge: 0.1 is added, and 0.03 is interior (0.1 never makes the top 2)
    ["Naive__lr0.1__seed10", "CBP__lr0.1_rho0.0__seed10", "CBP__lr0.1_rho0.1__seed10"],
]
TUNED_ROUNDS = [  # no keep: every point on every tuning seed in one round
    [
        "Naive__lr0.0001__seed10",
        "Naive__lr0.01__seed10",
        "Naive__lr0.0001__seed11",
        "Naive__lr0.01__seed11",
        "CBP__lr0.01_rho0.0__seed10",
        "CBP__lr0.01_rho0.1__seed10",
        "CBP__lr0.01_rho0.0__seed11",
        "CBP__lr0.01_rho0.1__seed11",
    ]
]


def _value(cfg: dict) -> float:
    """A fake target peaking at lr = 0.03, a little higher with rho and on some seeds."""
    p = (cfg.get("tuning") or {}).get("point") or {}
    lr = p.get("lr", 0.01)
    peak = 1.0 - abs(math.log10(lr) - math.log10(0.03)) / 10
    return peak + 0.01 * p.get("rho", 0) + 0.001 * (cfg["seed"] % 7)


def _fake_cell(cfg, run_dir, *args, **kwargs):
    """``run_cell_to_file`` without training: a finished result with the fake target."""
    result = {
        "schema_version": 1,
        "cell_id": cfg["cell_id"],
        "status": "ok",
        "config": cfg,
        "metrics": {"avg_final_accuracy": _value(cfg)},
        "versions": {},
        "timings": {},
    }
    write_json_atomic(cell_path(run_dir, cfg["cell_id"]), result)
    return {"cell_id": cfg["cell_id"], "status": "ok", "error": None}


def _suite(tmp_path, body: str, streams: str = ""):
    p = tmp_path / "fair.yaml"
    p.write_text(HEAD + streams + body + "presets: {cpu: {}}\n")
    return load_suite(p)


def _short(ids: list[str]) -> list[str]:
    return [c.replace("tune__toy__", "") for c in ids]


def _rounds_of(run) -> list[list[str]]:
    return [_short(inv["cells_planned"]) for inv in load_manifest(run)["invocations"]]


@pytest.mark.parametrize(
    "body, rounds, reported",
    [
        (PROTOCOL, PROTOCOL_ROUNDS, ["toy__Naive__seed0", "toy__CBP__seed0"]),
        (TUNED, TUNED_ROUNDS, ["toy__Naive__seed0", "toy__CBP__seed0", "toy__ReDo__seed0"]),
    ],
)
def test_the_launcher_runs_the_planned_rounds_then_the_picks(
    tmp_path, monkeypatch, body, rounds, reported
):
    monkeypatch.setattr(launch, "run_cell_to_file", _fake_cell)
    s = _suite(tmp_path, body)
    run = tmp_path / "run"
    launch.run_suite(s, str(run), progress=False, log=lambda m: None)
    assert _rounds_of(run) == rounds + [reported]
    # the planner alone, fed the same results, plans the same rounds
    planner = tuning.TuningRounds(s)
    planned, results = [], []
    cells = planner.first_round()
    while cells:
        planned.append(_short([c["cell_id"] for c in cells]))
        results += [{"config": c, "status": "ok", "metrics": {"avg_final_accuracy": _value(c)}}
                    for c in cells]  # fmt: skip
        cells = planner.next_round(results)
    assert planned == rounds


def test_the_picks_and_extensions_of_the_protocol(tmp_path, monkeypatch):
    monkeypatch.setattr(launch, "run_cell_to_file", _fake_cell)
    two = '  toy2: {name: "toy:toy_stream", args: {n_experiences: 2, dim: 6}}\n'
    for body, stream in (
        (PROTOCOL, "toy"),
        (PROTOCOL.replace("  target:", "  per: suite\n  target:"), "*"),
    ):
        run = tmp_path / f"run{stream != 'toy'}"
        s = _suite(tmp_path, body, streams=two if stream == "*" else "")
        launch.run_suite(s, str(run), progress=False, log=lambda m: None)
        choices = json.loads((run / "tuning.json").read_text())["choices"]
        got = [(c["stream"], c["method"], c["point"], c["extensions"]) for c in choices]
        ext = [{"axis": "lr", "round": 1, "value": 0.03}, {"axis": "lr", "round": 2, "value": 0.1}]
        assert got == [
            (stream, "Naive", {"lr": 0.03}, ext),
            (stream, "CBP", {"lr": 0.03, "rho": 0.1}, ext),
        ]
        assert [c["score"] for c in choices] == pytest.approx([1.0035, 1.0045])
        sizes = [len(inv["cells_planned"]) for inv in load_manifest(run)["invocations"]]
        assert sizes == ([9, 4, 3, 3, 3, 2] if stream == "toy" else [18, 8, 6, 6, 6, 4])


def test_a_killed_tuning_run_resumes_from_the_stored_rounds(tmp_path, monkeypatch):
    """Killed at the second cell of round 3: --resume replays rounds 1 and 2 from their
    stored results (nothing rerun), finishes round 3 and goes on as an unbroken run."""
    calls: list[str] = []

    def killing(cfg, run_dir, *a, **k):
        if len(calls) == 14:
            raise KeyboardInterrupt
        calls.append(cfg["cell_id"])
        return _fake_cell(cfg, run_dir)

    s = _suite(tmp_path, PROTOCOL)
    run = tmp_path / "run"
    monkeypatch.setattr(launch, "run_cell_to_file", killing)
    with pytest.raises(KeyboardInterrupt):
        launch.run_suite(s, str(run), progress=False, log=lambda m: None)
    monkeypatch.setattr(launch, "run_cell_to_file", _fake_cell)
    summ = launch.run_suite(s, str(run), progress=False, log=lambda m: None, resume=True)
    invs = load_manifest(run)["invocations"]
    got = [(i["status"], len(i["cells_planned"]), len(i["cells_skipped"])) for i in invs]
    assert got == [
        ("finished", 9, 0),
        ("finished", 4, 0),
        ("interrupted", 3, 0),  # killed: one of its three cells finished
        ("finished", 0, 9),  # the resumed run: rounds 1 and 2 replayed from storage
        ("finished", 0, 4),
        ("finished", 2, 1),
        ("finished", 3, 0),
        ("finished", 3, 0),
        ("finished", 2, 0),  # the reported cells
    ]
    assert summ.skipped == [] and set(summ.statuses) == {"toy__Naive__seed0", "toy__CBP__seed0"}
