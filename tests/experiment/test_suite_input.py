"""Bad suite input refused at load with a clear message: cell-id collisions, seeds, and
arguments nothing would receive."""

from __future__ import annotations

import pytest

from avalanche_neumod.experiment import launch
from avalanche_neumod.experiment.cell import run_cell
from avalanche_neumod.experiment.launch import run_suite
from avalanche_neumod.experiment.run_folder import load_cell
from avalanche_neumod.experiment.suite import SuiteError, expand, load_suite

BASE = """
name: s
defaults:
  model: {name: mlp, args: {hidden_sizes: [8]}}
  train: {mb_size: 16}
streams:
  toy: {name: "toy:toy_stream", args: {n_experiences: 2}}
presets: {cpu: {}}
"""


def _suite(tmp_path, extra: str, methods: str = "methods: {FastNaive: {}}\n"):
    p = tmp_path / "s.yaml"
    p.write_text(BASE + methods + extra)
    return p


@pytest.mark.parametrize(
    "methods, ids",
    [
        ("methods: {my method: {name: FastNaive}, my-method: {name: FastNaive}}\n", "my-method"),
        ("methods: {EWC: {}, ewc: {name: EWC}}\n", "ewc"),
    ],
)
def test_cell_id_collision_refused(tmp_path, methods, ids):
    with pytest.raises(SuiteError, match=rf"map to the same cell id 'toy__{ids}__seed0'"):
        load_suite(_suite(tmp_path, "", methods))


@pytest.mark.parametrize(
    "seeds, message",
    [
        (
            "5",
            r"seeds must be a list of distinct integers.*got 5 \(write \[5\] for seed 5, or "
            r"\[0, 1, 2, 3, 4\] for 5 seeds\)",
        ),
        ('"abc"', r"seeds must be a list.*got 'abc'"),
        ('"012"', r"seeds must be a list.*got '012'"),
        ("{a: 1}", r"seeds must be a list.*got \{'a': 1\}"),
        ("[0, 0]", r"seeds repeats seed\(s\) 0"),
        ("[0, x]", r"not integers >= 0: 'x'"),
        ("[-1]", r"not integers >= 0: -1"),
        ("[true]", r"not integers >= 0: True"),
        ("[]", r"got an empty list"),
    ],
)
def test_bad_seeds_refused(tmp_path, seeds, message):
    with pytest.raises(SuiteError, match=message):
        load_suite(_suite(tmp_path, f"seeds: {seeds}\n"))


def test_seed_list_and_repeated_run_filter(tmp_path):
    s = load_suite(_suite(tmp_path, "seeds: [2, 0]\n"))
    assert [c["seed"] for c in expand(s)] == [2, 0]
    with pytest.raises(SuiteError, match=r"--seeds repeats seed\(s\) 1"):
        expand(s, seeds=[1, 1])


@pytest.mark.parametrize(
    "methods, message",
    [
        (
            "{FastNaive: {train: {epoch: 50}}}",
            r"train: unknown argument\(s\) epoch; valid: "
            r"device, epochs, eval_mb_size, mb_size",
        ),
        (
            "{FastNaive: {eval: {every_experiance: false}}}",
            r"eval: unknown argument\(s\) "
            r"every_experiance; valid: every_experience, log_every",
        ),
        ("{FastNaive: {eval: {log_every: 0}}}", r"eval.log_every must be an integer >= 1, got 0"),
        ("{FastNaive: {eval: {every_experience: 'no'}}}", r"every_experience must be true or"),
        ("{FastNaive: {train: {eval_mb_size: 0}}}", r"eval_mb_size must be an integer >= 1"),
        (
            "{EWC: {args: {ewc_lamda: 5}}}",
            r"method 'EWC' args: unknown argument\(s\) ewc_lamda;"
            r" valid: .*ewc_lambda",
        ),
        (
            "{CBP: {args: {rhoo: 0.1}}}",
            r"method 'CBP' args: unknown argument\(s\) rhoo; valid:"
            r" .*rho",
        ),
        (
            "{FastNaive: {model: {args: {hiden_sizes: [4]}}}}",
            r"model 'mlp' args: unknown "
            r"argument\(s\) hiden_sizes; valid: activation, bias, hidden_sizes$",
        ),
        ("{FastNaive: {optimizer: {lrr: 0.1}}}", r"optimizer 'sgd': unknown argument\(s\) lrr"),
        (
            "{FastNaive: {metrics: {plasticity: {sampels: 8}}}}",
            r"metric 'plasticity': unknown "
            r"argument\(s\) sampels; valid: .*samples",
        ),
        (
            "{FastNaive: {metrics: {stability_gap: {every: 2}}}}",
            r"metric 'stability_gap': "
            r"unknown argument\(s\) every; valid: .*eval_every.*windows",
        ),
    ],
)
def test_unknown_or_bad_arguments_refused_at_load(tmp_path, methods, message):
    with pytest.raises(SuiteError, match=message):
        load_suite(_suite(tmp_path, "", f"methods: {methods}\n"))


def test_stream_and_wrapper_arguments_checked(tmp_path):
    p = tmp_path / "w.yaml"
    p.write_text(BASE.replace("n_experiences: 2", "n_experience: 2") + "methods: {FastNaive: {}}\n")
    with pytest.raises(
        SuiteError,
        match=r"stream 'toy:toy_stream' args: unknown argument\(s\) "
        r"n_experience; valid: classes, dim, n, n_experiences, seed",
    ):
        load_suite(p)
    p.write_text(
        BASE.replace(
            "n_experiences: 2}", "n_experiences: 2}, wrappers: [{name: recurring, args: {evry: 2}}]"
        )
        + "methods: {FastNaive: {}}\n"
    )
    with pytest.raises(
        SuiteError,
        match=r"wrapper 'recurring' args: unknown argument\(s\) evry;"
        r" valid: every$",
    ):
        load_suite(p)


def test_known_arguments_accepted(tmp_path):
    s = load_suite(
        _suite(
            tmp_path,
            "",
            "methods:\n  Naive: {}\n"
            "  EWC: {args: {ewc_lambda: 5, mode: separate}, eval: {log_every: 2}}\n"
            "  CBP: {args: {rho: 0.1}, optimizer: {momentum: 0.9}}\n",
        )
    )
    assert len(expand(s)) == 3


def test_cell_failing_at_run_time_is_recorded_and_suite_goes_on(tmp_path, monkeypatch):
    """A sequential suite records a cell that raises as failed and runs the others."""
    p = _suite(tmp_path, "", "methods: {FastNaive: {}, Naive: {}}\n")
    real = launch.run_cell_to_file

    def first_raises(cfg, *a, **k):
        if cfg["method_key"] == "FastNaive":
            raise ValueError("log_every must be >= 1, got 0")
        return real(cfg, *a, **k)

    monkeypatch.setattr(launch, "run_cell_to_file", first_raises)
    run = tmp_path / "run"
    s = run_suite(load_suite(p), str(run), progress=False)
    assert s.statuses == {"toy__FastNaive__seed0": "failed", "toy__Naive__seed0": "ok"}
    r = load_cell(run, "toy__FastNaive__seed0")
    assert r["status"] == "failed" and "log_every must be >= 1" in r["error"]


def test_bad_setting_past_validation_fails_its_cell_only(tmp_path):
    """A configuration that skipped the load checks fails its own cell (no traceback)."""
    (cfg,) = expand(load_suite(_suite(tmp_path, "")))
    cfg["eval"]["log_every"] = 0
    r = run_cell(cfg)
    assert r["status"] == "failed" and "log_every must be >= 1" in r["error"]
