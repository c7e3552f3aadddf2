"""Committed reports reproduce at the current code, on this machine or another.

For every committed report folder with cells (``reports/*/run/cells``), the cheapest
finished cell by stored wall time is run again from its stored configuration at the
current code, and what a report prints of it (``reproduce.printed``: the accuracy
``metrics`` and the typed measures' scores) is compared with the stored record:

- **exactly** when this machine's platform fingerprint (CPU, ISA level, BLAS/oneDNN,
  versions, threads; ``reproduce.platform_fingerprint``) equals the one stored in the
  cell: same machine, same code, same bits;
- **within tolerance** (``reproduce.TOLERANCE``, measured by
  ``benchmarks/scripts/reproduction_spread.py``; docs/suites.md) otherwise, and for cells
  stored before fingerprints were recorded: counts, settings and structure still exactly.

The mode is printed. A rerun that differs beyond that fails: the report is stale. The
yardstick of a real change, the same cell with the next seed, must fail the tolerance
comparison (:func:`test_tolerance_still_sees_a_real_change`), so the tolerance cannot
hide one. A report's cheapest cell must stay under :data:`MAX_CELL_S` (it is never
skipped for its cost); the tests skip only where the datasets are absent.

:func:`test_committed_report_matches_its_suite` checks that every stored cell's
configuration is what the current suite file expands to, and that no cell of the suite
is missing; :func:`test_committed_report_regenerates` that each ``report.md`` is what the
current code writes from the stored cells.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from avalanche_neumod.experiment.cell import run_cell
from avalanche_neumod.experiment.reproduce import (
    compare,
    differences,
    emulation,
    platform_fingerprint,
    printed,
    same_platform,
)
from avalanche_neumod.experiment.run_folder import _clean, cell_files, load_results

REPO = Path(__file__).resolve().parents[2]
MAX_CELL_S = 30.0  # the lab report's cheapest cell (a Naive Permuted-MNIST one) fits
# report folder -> why its cells are known not to match the current suite definition
_REDEFINED = (
    "made before its suite took the papers' tuning protocol (one shared lr grid, >= 3 values "
    "per axis, two tuning seeds, grid extension, 400 epochs on the memorisation streams): its "
    "cells' configurations are not the suite's any more; the next lab round regenerates it"
)
STALE: dict[str, str] = {
    "ablation_lab": _REDEFINED,
}

_LAB_ROUND = (
    "the lab round so far: Permuted MNIST, the baselines (--streams, --methods); the MNIST "
    "memorisation stream and NeuMoSync continue with --resume, the CIFAR-10 streams need a "
    "machine that affords them (docs/suites.md)"
)
# report folder -> why some cells of its suite are not in it yet (a long run in progress,
# resumed across sessions); every stored cell must still match the suite
PARTIAL: dict[str, str] = {
    "plasticity_lab": "the lab round so far: Permuted MNIST, the baselines (--streams, --methods); "
    "Random-Label MNIST and NeuMoSync continue with --resume, the CIFAR-10 streams need a "
    "machine that affords them (docs/suites.md)",
    "ablation_lab": "the MNIST streams only (--streams); Shuffle CIFAR-10 not run",
    "transfer_lab": _LAB_ROUND,
    "maml_lab": _LAB_ROUND,
    "recurring_lab": _LAB_ROUND,
    "neumosync_study_lab": "the run that decided NeuMoSync's defaults: Naive, NeuMoSync and "
    "unbounded alphas only (--methods); the other variants were run at the cpu preset",
}

# report folder -> why its stored metrics are known to differ at the current code
RERUN_STALE: dict[str, str] = {}  # empty: every committed report is current


def _report_runs() -> list[Path]:
    return sorted(p.parent for p in REPO.glob("reports/*/run/cells") if cell_files(p.parent))


def _cheapest(run: Path) -> dict:
    ok = [r for r in load_results(run) if r.get("status") == "ok"]
    ok = [r for r in ok if not (r.get("config") or {}).get("tuning")] or ok
    return min(ok, key=lambda r: float(r.get("timings", {}).get("total_s", float("inf"))))


def _params(stale: dict[str, str]) -> list:
    return [
        pytest.param(
            p,
            id=p.parent.name,
            marks=[pytest.mark.xfail(reason=stale[p.parent.name], strict=True)]
            if p.parent.name in stale
            else [],
        )
        for p in _report_runs()
    ]


def _needs_data(stored: dict) -> None:
    if not os.environ.get("NEUMOD_DATA_ROOT") and "mnist" in json.dumps(stored["config"]):
        pytest.skip("NEUMOD_DATA_ROOT is not set: the stored cell needs the real datasets")


def _rerun(stored: dict, seed_offset: int = 0) -> dict:
    cfg = json.loads(json.dumps(stored["config"]))
    cfg["seed"] = int(cfg["seed"]) + seed_offset
    return _run(cfg, (stored.get("host") or {}).get("torch_threads"))


def _run(cfg: dict, threads) -> dict:
    again = run_cell(cfg, root=os.environ.get("NEUMOD_DATA_ROOT"), threads=threads)
    assert again["status"] == "ok", again.get("traceback")
    return json.loads(json.dumps(_clean(again)))


@pytest.mark.parametrize("run", _params(RERUN_STALE))
def test_committed_report_reproduces(run: Path):
    stored = _cheapest(run)
    t = float(stored["timings"].get("total_s", float("inf")))
    assert t <= MAX_CELL_S, (
        f"{run.parent.name}: the cheapest cell took {t:.1f} s > {MAX_CELL_S} s; keep a cheap "
        "cell in every committed report so that it can be checked"
    )
    _needs_data(stored)
    mode, diff = compare(stored, _run, root=os.environ.get("NEUMOD_DATA_ROOT"))
    print(f"{run.parent.name}: {stored['cell_id']} compared {mode}")
    commit = stored.get("versions", {}).get("git_commit", "?")
    assert not diff, (
        f"{run.parent.name}: {stored['cell_id']} (made at commit {commit}) does not reproduce "
        f"at the current code, compared {mode}; regenerate the report:\n" + "\n".join(diff[:10])
    )


def test_tolerance_still_sees_a_real_change():
    """The same cell with the next seed (a different trajectory of the same code, the least a
    real change does) differs beyond the tolerance."""
    runs = _report_runs()
    stored = min((_cheapest(r) for r in runs), key=lambda r: float(r["timings"]["total_s"]))
    _needs_data(stored)
    changed = _rerun(stored, seed_offset=1)
    assert differences(printed(stored), printed(changed), exact=False)


def test_fingerprint_names_what_decides_the_sums(monkeypatch):
    fp = platform_fingerprint()
    for key in ("cpu", "isa", "blas", "onednn", "torch", "numpy", "python", "threads"):
        assert key in fp
    assert same_platform(fp, dict(fp))
    assert not same_platform(None, fp)
    assert not same_platform({**fp, "threads": fp["threads"] + 1}, fp)
    assert not same_platform({**fp, "isa": fp["isa"] + "-other"}, fp)


def test_emulation_only_where_this_machine_can_select_the_stored_kernels():
    here = {**platform_fingerprint(), "isa": "AVX512"}

    def stored(**fp) -> dict:
        return {"host": {"fingerprint": {**here, **fp}}}

    assert emulation(stored(isa="AVX2"), here) == {"ATEN_CPU_CAPABILITY": "avx2"}
    assert emulation(stored(isa="AVX512"), {**here, "isa": "AVX2"}) is None  # above this CPU
    assert emulation(stored(isa="AVX2", torch="0.1"), here) is None
    assert emulation(stored(isa="AVX2", onednn="v0"), here) is None
    assert emulation(stored(isa="SVE256"), here) is None
    legacy = {"host": {"torch_threads": 1}, "versions": {k: here[k] for k in ("torch", "numpy")}}
    assert emulation(legacy, here) == {"ATEN_CPU_CAPABILITY": "avx2"}  # LEGACY_ISA


def test_differences_by_kind():
    stored = {
        "metrics": {
            "accuracy_matrix": [[0.9, 0.1], [0.5, 0.8]],
            "avg_accuracy": 0.65,
            "n_iterations": 10,
        }
    }

    def moved(**kw):
        d = json.loads(json.dumps(stored))
        for path, v in kw.items():
            *head, last = path.split("__")
            at = d["metrics"]
            for k in head:
                at = at[k] if isinstance(at, dict) else at[int(k)]
            at[int(last) if isinstance(at, list) else last] = v
        return d

    assert differences(stored, stored, exact=True) == []
    assert differences(stored, moved(accuracy_matrix__0__0=0.9001), exact=True)
    assert not differences(stored, moved(accuracy_matrix__0__0=0.9001), exact=False)
    assert differences(stored, moved(accuracy_matrix__0__0=0.95), exact=False)  # first task
    assert not differences(stored, moved(accuracy_matrix__1__0=0.6), exact=False)  # later
    assert differences(stored, moved(accuracy_matrix__1__0=0.1), exact=False)  # broken
    assert differences(stored, moved(n_iterations=11), exact=False)  # counts exactly
    assert differences(stored, moved(avg_accuracy=0.4), exact=False)
    assert differences(stored, {"metrics": {}}, exact=False)  # structure exactly


@pytest.mark.parametrize("run", _params(STALE))
def test_committed_report_matches_its_suite(run: Path):
    from avalanche_neumod.experiment import tuning
    from avalanche_neumod.experiment.launch import _comparable
    from avalanche_neumod.experiment.suite import load_suite

    results = load_results(run)
    cfg0 = results[0]["config"]
    suite = load_suite(cfg0["suite"], cfg0["preset"])
    stored = {r["cell_id"]: r["config"] for r in results}
    want = {c["cell_id"]: c for c in tuning.tuning_cells(suite)}
    choices = {}
    if want:
        tres = [r for r in results if r["config"].get("tuning")]
        choices = tuning.select(suite.tune, tuning.method_grids(suite.methods), tres)
    want.update({c["cell_id"]: c for c in tuning.reported_cells(suite, choices)})
    missing = sorted(set(want) - set(stored))
    if run.parent.name in PARTIAL:
        want = {k: c for k, c in want.items() if k in stored}
    else:
        assert not missing, f"{run.parent.name}: suite cells not in the report: {missing[:5]}"
    differ = sorted(k for k, c in want.items() if _comparable(c) != _comparable(stored.get(k, {})))
    assert not differ, f"{run.parent.name}: cells run with another configuration: {differ[:5]}"


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _same_up_to_last_digit(want: str, got: str) -> bool:
    """Equal text, each printed number equal or one unit apart in its last digit: a value on
    a rounding boundary (-0.625 at two decimals) may print either way on another CPU."""
    if _NUMBER.split(want) != _NUMBER.split(got):
        return False
    a, b = _NUMBER.findall(want), _NUMBER.findall(got)
    for x, y in zip(a, b):
        decimals = len(x.split(".")[1]) if "." in x else 0
        if decimals != (len(y.split(".")[1]) if "." in y else 0):
            return False
        if abs(float(x) - float(y)) > 1.5 * 10**-decimals:
            return False
    return True


@pytest.mark.parametrize("run", _params({}))
def test_committed_report_regenerates(run: Path, tmp_path, monkeypatch):
    """``report.md`` is what the current code writes from the stored (compact) cells: the
    cells lose nothing a report prints, and no committed report is stale."""
    from avalanche_neumod.reporting import figures, report

    def close_only(fig, out, name, bottom=0.0):  # the figures are built, not encoded
        figures.plt.close(fig)
        return Path(out) / name

    monkeypatch.setattr(figures, "_save", close_only)
    got = report.build_report(run, tmp_path).splitlines()
    want = (run.parent / "report.md").read_text()
    want = want.split(f"\n## Notes (hand-written, `{report.NOTES}`)")[0].splitlines()
    assert len(got) == len(want), (
        f"{run.parent.name}: report.md has {len(want)} lines, the current code writes "
        f"{len(got)}; regenerate it"
    )
    bad = [(w, g) for w, g in zip(want, got) if w != g and not _same_up_to_last_digit(w, g)]
    assert not bad, (
        f"{run.parent.name}/report.md is stale; first difference:\n{bad[0][0]}\n"
        f"{bad[0][1]}\nregenerate: neumod report {run.relative_to(REPO)} --out "
        f"{run.parent.relative_to(REPO)}"
    )


def test_committed_reports_stay_light():
    """Run folders are committed compactly (``neumod compact``) and reports/ stays small."""
    plain = sorted(str(p.relative_to(REPO)) for p in REPO.glob("reports/*/run/cells/*.json"))
    assert not plain, f"plain cell files committed (run `neumod compact`): {plain[:3]}"
    size = sum(p.stat().st_size for p in (REPO / "reports").rglob("*") if p.is_file())
    assert size <= 25 * 2**20, f"reports/ holds {size / 2**20:.1f} MiB > 25 MiB"
