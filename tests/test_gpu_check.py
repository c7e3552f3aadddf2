"""``benchmarks/gpu_check.sh --device cpu --quick`` runs to the end and writes its report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_quick_on_cpu(tmp_path):
    """The device check on the CPU at tiny sizes (one suite; the device tests run in this
    suite already): every step passes, the report names each step, the device and torch,
    and nothing is written under reports/."""
    out = tmp_path / "gpu.md"
    before = sorted(p.name for p in (REPO / "reports").iterdir())
    env = {**os.environ, "PYTHON": sys.executable, "MPLBACKEND": "Agg"}
    r = subprocess.run(
        [
            "bash",
            str(REPO / "benchmarks" / "gpu_check.sh"),
            "--device",
            "cpu",
            "--quick",
            "--out",
            str(out),
            "--wheelhouse",
            str(tmp_path / "none"),
            "--data",
            "synthetic",
            "--skip",
            "tests",
            "--suites",
            "smoke",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    text = out.read_text()
    for step in ("environment", "suite smoke", "perf"):
        assert f"| {step} | pass |" in text, text
    assert "3 of 3 steps passed" in text and "(cpu)" in text and "torch" in text
    assert "random stand-in data for mnist" in text
    assert "| P1 |" in text and "P2 NeuMoSync slim_resnet18 (batch 128, cpu)" in text
    assert sorted(p.name for p in (REPO / "reports").iterdir()) == before


def test_gpu_check_records_a_failing_step_and_exits_nonzero(tmp_path):
    """A step that fails is recorded in the report and the script goes on, then exits 1."""
    out = tmp_path / "gpu.md"
    code = (
        "import sys; sys.path.insert(0, %r); import gpu_check as g\n"
        "def boom(step, *a, **k): raise RuntimeError('no such kernel')\n"
        "g.step_suite = boom\n"
        "sys.exit(g.main(['--device', 'cpu', '--quick', '--out', %r, '--skip', 'tests', "
        "'perf', '--suites', 'smoke', 'perf']))\n"
    ) % (str(REPO / "benchmarks"), str(out))
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    text = out.read_text()
    assert "| suite perf | **FAIL** |" in text and "| suite smoke | **FAIL** |" in text
    assert "RuntimeError: no such kernel" in text and "1 of 3 steps passed" in text
