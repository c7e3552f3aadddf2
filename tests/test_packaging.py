"""The package as a user installs it, and what it declares.

A wheel built from this checkout, installed into a fresh target, lists every shipped suite
and runs a suite (one of its own, and a suite given by path) from a folder outside the
checkout; the avalanche-lib range of ``pyproject.toml`` is the one checked at import; CI
runs exactly the README's test command.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import avalanche_neumod

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.stem for p in (REPO / "avalanche_neumod" / "suites").glob("*.yaml"))

MY_SUITE = """
name: my_suite
description: A user's suite, given by path.
seeds: [0]
defaults:
  model: {name: mlp, args: {hidden_sizes: [16]}}
  train: {mb_size: 8, epochs: 1}
streams:
  toy: {name: "toy:toy_stream", args: {n_experiences: 2}}
methods:
  FastNaive: {}
presets:
  cpu: {}
"""


def _pip(*args: str) -> None:
    """``python -m pip`` offline (no index): the build uses this environment's setuptools."""
    cmd = [sys.executable, "-m", "pip", *args, "--no-deps", "--no-index", "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(cmd)}:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel of this checkout installed into a fresh target folder (returned)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # a copy, so the build writes nothing into the checkout
    src.mkdir()
    for name in ("pyproject.toml", "setup.cfg", "README.md"):
        shutil.copy(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "avalanche_neumod", src / "avalanche_neumod", ignore=ignore)
    _pip("wheel", "--no-build-isolation", "-w", str(tmp / "dist"), str(src))
    (wheel,) = (tmp / "dist").glob("avalanche_neumod-*.whl")
    _pip("install", "--target", str(tmp / "site"), str(wheel))
    return tmp / "site"


def _user(installed: Path, tmp_path: Path, *args: str, extra_path: str = "") -> str:
    """Run ``args`` (after the interpreter) in a folder outside the checkout, with only the
    installed target (and ``extra_path``) on PYTHONPATH; return stdout."""
    home = tmp_path / "user"
    home.mkdir(exist_ok=True)
    assert REPO not in home.resolve().parents
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NEUMOD_SUITES")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(installed), extra_path) if p)
    env["MPLBACKEND"] = "Agg"
    done = subprocess.run(args, cwd=home, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_installed_wheel_is_the_package_imported(installed, tmp_path):
    code = (
        "import sys, avalanche_neumod; print(avalanche_neumod.__file__); "
        "print('\\n'.join(p for p in sys.path if p))"
    )
    out = _user(installed, tmp_path, sys.executable, "-c", code).splitlines()
    assert Path(out[0]).resolve() == (installed / "avalanche_neumod" / "__init__.py").resolve()
    on_path = [Path(p).resolve() for p in out[1:] if Path(p).exists()]  # not path hooks
    venv = Path(sys.prefix).resolve()  # the interpreter's own site-packages may sit in the clone
    inside = [
        p for p in on_path if (p == REPO or REPO in p.parents) and venv not in (p, *p.parents)
    ]
    assert not inside, on_path


def test_installed_wheel_lists_every_shipped_suite(installed, tmp_path):
    assert {"smoke", "plasticity", "stability_gap", "perf"} <= set(SHIPPED)
    out = _user(installed, tmp_path, str(installed / "bin" / "neumod"), "list", "suites")
    listed = dict(line.split() for line in out.splitlines()[1:])
    assert sorted(listed) == SHIPPED
    for name, path in listed.items():
        assert Path(path) == installed / "avalanche_neumod" / "suites" / f"{name}.yaml"


RUNS = """
import sys
from avalanche_neumod.cli import main
for argv in sys.argv[1:]:
    rc = main(argv.split("|"))
    if rc:
        sys.exit(rc)
"""


def test_installed_wheel_runs_suites_outside_the_checkout(installed, tmp_path):
    """A suite given by path (with the user's own stream module) and, when MNIST is there,
    the shipped ``smoke`` suite by name (one cell), in one interpreter (imports are slow)."""
    lib = tmp_path / "lib"  # the user's own stream module, outside the checkout
    lib.mkdir()
    shutil.copy(REPO / "tests" / "experiment" / "toy.py", lib / "toy.py")
    mine = tmp_path / "my_suite.yaml"
    mine.write_text(MY_SUITE)
    runs = tmp_path / "runs"
    argvs = [["run", str(mine), "--out", str(runs / "mine"), "--no-progress"]]
    want = {"mine": ["toy__FastNaive__seed0.json.gz"]}
    root = os.environ.get("NEUMOD_DATA_ROOT")
    if root and Path(root, "MNIST").is_dir():  # the shipped suite reads MNIST
        argvs.append(["run", "smoke", "--out", str(runs / "smoke"), "--methods", "Naive"])
        argvs[-1] += ["--streams", "random_label_mnist", "--data-root", root, "--no-progress"]
        want["smoke"] = ["random_label_mnist__Naive__seed0.json.gz"]
    cmd = [sys.executable, "-c", RUNS, *("|".join(a) for a in argvs)]
    out = _user(installed, tmp_path, *cmd, extra_path=str(lib))
    assert out.count("1 cell(s) run (1 ok, 0 diverged, 0 failed)") == len(want), out
    for name, cells in want.items():
        assert [p.name for p in (runs / name / "cells").glob("*.json.gz")] == cells


def test_avalanche_range_is_the_one_declared():
    text = (REPO / "pyproject.toml").read_text()
    declared = re.findall(r'^\s*"(avalanche-lib[^"]*)"', text, flags=re.M)
    assert declared == [avalanche_neumod.AVALANCHE_REQUIREMENT] == ["avalanche-lib>=0.6,<0.7"]


@pytest.mark.parametrize("version", ["0.6.0", "0.6.3", "0.6.1rc1"])
def test_avalanche_in_range_is_accepted(version, monkeypatch):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: version)
    assert avalanche_neumod._installed_avalanche() == version
    avalanche_neumod.check_avalanche(avalanche_neumod._installed_avalanche())


@pytest.mark.parametrize("version", ["0.5.2", "0.7.0", "0.7.0.dev1", "1.0.0", "main", None])
def test_avalanche_out_of_range_is_refused(version, monkeypatch):
    def lookup(name: str) -> str:
        assert name == "avalanche-lib"
        if version is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return version

    monkeypatch.setattr(importlib.metadata, "version", lookup)
    what = f"avalanche-lib {version} is installed" if version else "avalanche-lib is not installed"
    with pytest.raises(ImportError, match=re.escape("supports avalanche-lib>=0.6,<0.7 (Fast")):
        avalanche_neumod.check_avalanche(avalanche_neumod._installed_avalanche())
    with pytest.raises(ImportError, match=re.escape(what)):
        avalanche_neumod.check_avalanche(avalanche_neumod._installed_avalanche())


def test_import_fails_on_another_avalanche():
    """The check runs when the package is imported, before anything else of it."""
    code = (
        "import importlib.metadata as m; m.version = lambda name: '0.7.1'\nimport avalanche_neumod"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        f"ImportError: avalanche-neumod {avalanche_neumod.__version__} supports "
        "avalanche-lib>=0.6,<0.7 (FastTemplate relies on its internals), "
        "but avalanche-lib 0.7.1 is installed: "
        "pip install 'avalanche-lib>=0.6,<0.7'"
    )


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    (line,) = [ln for ln in readme.splitlines() if "this is what CI runs" in ln]
    command = line.split("#")[0].strip()
    assert command == "make test"
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    steps = [ln.strip() for ln in ci if ln.strip() and not ln.lstrip().startswith("#")]
    assert steps[-1] == command and steps.count(command) == 1
