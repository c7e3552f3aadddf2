"""The ``neumod`` command line: run, report, list, and the messages for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "experiment"))

from suite_fixtures import TINY, toy_on_path  # noqa: E402, F401

from avalanche_neumod.cli import main  # noqa: E402
from avalanche_neumod.experiment.results import cell_files, cell_id_of  # noqa: E402


@pytest.fixture
def tiny(tmp_path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY)
    return p


def test_run_then_report(tiny, tmp_path, capsys):
    run, rep = tmp_path / "runs" / "t", tmp_path / "reports" / "t"
    rc = main(
        [
            "run",
            str(tiny),
            "--out",
            str(run),
            "--methods",
            "FastNaive",
            "Boom",
            "--streams",
            "toy",
            "--seeds",
            "3",
            "--no-progress",
        ]
    )
    assert rc == 0  # a diverged cell is a result, not an error
    out = capsys.readouterr()
    assert "2 cell(s) run (1 ok, 1 diverged, 0 failed)" in out.out
    assert "[diverged] toy__Boom__seed3" in out.err
    ids = [cell_id_of(p) for p in cell_files(run)]
    assert ids == ["toy__Boom__seed3", "toy__FastNaive__seed3"]
    man = json.loads((run / "manifest.json").read_text())
    assert man["invocations"][0]["command"].startswith("neumod run ")
    assert main(["report", str(run), "--out", str(rep)]) == 0
    md = (rep / "report.md").read_text()
    assert "| FastNaive |" in md and "diverged (1/1)" in md
    assert "--seeds 3" in md  # the command that produced the results


def test_list(capsys):
    assert main(["list", "methods"]) == 0
    out = capsys.readouterr().out
    for name in ("Naive", "EWC", "Replay", "SI", "LwF", "NeuMoSync", "NGMSGD", "CBP", "MAML"):
        assert f"  {name} " in out
    ngm = next(line for line in out.splitlines() if line.startswith("  NGMSGD "))
    assert "own optimizer; tunable: eta" in ngm  # from its declaration
    assert main(["list", "suites"]) == 0
    out = capsys.readouterr().out
    for name in ("smoke", "plasticity", "stability_gap", "perf"):
        assert name in out


LIGHT = """
import sys
from avalanche_neumod.cli import main
try:
    rc = main({argv!r})
except SystemExit as e:  # --help
    rc = e.code
heavy = sorted({{"torch", "avalanche", "numpy", "matplotlib"}} & set(sys.modules))
print("HEAVY", heavy)
sys.exit(rc)
"""


@pytest.mark.parametrize(
    "argv, shown",
    [(["--help"], "usage: neumod"), (["list", "suites"], "smoke"), (["list", "presets"], "smoke")],
)
def test_light_verbs_import_neither_torch_nor_avalanche(argv, shown):
    out = subprocess.run(
        [sys.executable, "-c", LIGHT.format(argv=argv)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout
    assert shown in out.stdout, out.stdout  # the verb did its work


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "nope"], r"unknown suite 'nope'; valid suites: .*smoke"),
        (
            ["run", "{tiny}", "--preset", "gpu"],
            r"unknown preset 'gpu'.*valid presets: cpu, two_seeds",
        ),
        (
            ["run", "{tiny}", "--methods", "EWCC"],
            r"unknown method\(s\) EWCC.*valid methods: FastNaive",
        ),
        (["run", "{tiny}", "--streams", "pm"], r"valid streams: toy, toy2"),
        (["run", "{tiny}", "--launcher", "slurm"], r"valid launchers: local, submitit"),
        (["run", "{tiny}", "--seeds", "0", "0"], r"--seeds repeats seed\(s\) 0"),
        (["report", "{tmp}/nothing"], r"no results in .*nothing"),
    ],
)
def test_bad_input_messages(argv, message, tiny, tmp_path, capsys):
    argv = [a.format(tiny=tiny, tmp=tmp_path) for a in argv]
    if argv[0] == "run":
        argv += ["--out", str(tmp_path / "r"), "--no-progress"]
    assert main(argv) == 2
    import re

    assert re.search(message, capsys.readouterr().err), message
    assert not (tmp_path / "r").exists()  # a refused run leaves no folder behind


def test_force_mixed_flag(tiny, tmp_path, capsys):
    run = tmp_path / "r"
    base = ["--out", str(run), "--streams", "toy", "--no-progress"]
    assert main(["run", str(tiny), "--methods", "FastNaive", *base]) == 0
    other = tmp_path / "other.yaml"
    other.write_text(tiny.read_text().replace("name: tiny", "name: other"))
    assert main(["run", str(other), "--methods", "Naive", *base]) == 2
    assert "--force-mixed" in capsys.readouterr().err
    assert main(["run", str(other), "--methods", "Naive", "--force-mixed", *base]) == 0
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "holds cells of 2 suites" in err


def test_malformed_yaml_names_the_line(tmp_path, capsys):
    p = tmp_path / "bad.yaml"
    p.write_text("name: bad\nseeds: [0\nmethods: {Naive: {}}\n")
    assert main(["run", str(p), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "malformed YAML" in err and "line 3" in err and str(p) in err


def test_missing_dataset_names_the_path(tmp_path, capsys):
    from avalanche_neumod import benchmarks

    assert "permuted_mnist" in benchmarks.STREAMS
    p = tmp_path / "pm.yaml"
    p.write_text(
        "name: pm\nstreams: {permuted_mnist: {args: {n_experiences: 2}}}\n"
        "methods: {FastNaive: {}}\npresets: {cpu: {}}\n"
    )
    empty = tmp_path / "no_data_here"
    empty.mkdir()
    rc = main(
        ["run", str(p), "--out", str(tmp_path / "r"), "--data-root", str(empty), "--no-progress"]
    )
    assert rc == 1
    err = capsys.readouterr().err
    assert "[failed] permuted_mnist__FastNaive__seed0" in err
    assert str(empty) in err
