"""Rerunning a stored cell: the platform fingerprint and how a rerun is compared.

Floating-point sums depend on the kernels torch dispatches to (the CPU's ISA level, the
BLAS and oneDNN builds), on the thread count and on the library versions; training
amplifies a last-bit difference into a different trajectory. So a rerun is compared in
one of three modes (:func:`compare`):

1. **exact**: the stored fingerprint (:func:`platform_fingerprint`, in every cell's
   ``host["fingerprint"]``) is this machine's. Same kernels, same code: same bits.
2. **exact, emulated**: another machine whose kernels this one can select: same torch and
   numpy, and an x86 ISA level at or below this CPU's. The cell is rerun in a subprocess
   with ``ATEN_CPU_CAPABILITY`` set to the stored level and the stored thread count
   (:func:`emulation`) and compared bit for bit. Cells stored before fingerprints were
   recorded are taken as :data:`LEGACY_ISA` (measured: docs/suites.md).
3. **tolerance**, where neither applies or the emulated rerun still differs (another
   CPU's BLAS code paths): :func:`differences` with ``exact=False``.

What is compared is what a report prints of a cell (:func:`printed`): the accuracy
metrics and the typed measures' scores (transfer without its probes' wall time).
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
from functools import lru_cache
from typing import Any, Iterator, Optional

# The largest difference a rerun on another platform may show (fractions of 1: 0.01 is one
# accuracy point). Through the first experience a rerun on other kernels stays close to the
# stored trajectory (measured: at most 0.012 on any committed report's check cell, 7 of 600
# images after 25 epochs of Random-Label MNIST at the default ISA level). Later, training
# has amplified the last-bit differences into another trajectory, and only a bound that a
# broken method would cross is left (measured spread up to 0.25 on one Random-Label task,
# 0.08 on a stream summary). Measurements: docs/suites.md ("Reproducing a report on another
# machine"), benchmarks/scripts/reproduction_spread.py.
TOLERANCE = {
    "first": 0.025,  # a value that depends only on training the first experience
    "value": 0.35,  # any other single accuracy or score
    "mean": 0.12,  # any other summary over a stream
}
# Metrics indexed by experience: entry i depends on training experiences 0..i only.
PER_EXPERIENCE = {"accuracy_matrix", "accuracy_at_end", "stream_accuracy"}
# x86 levels torch can be lowered to with ATEN_CPU_CAPABILITY, lowest first.
ISA_LEVELS = ("DEFAULT", "AVX2", "AVX512")
# The ISA level of cells stored before fingerprints were recorded: every committed report's
# check cell reruns bit-identically with ATEN_CPU_CAPABILITY=avx2 (measured 2026-12-07).
LEGACY_ISA = "AVX2"
# Keys whose values are whole-stream summaries (compared with TOLERANCE["mean"]).
SUMMARY_KEYS = re.compile(r"^(avg_.*|LCA_.*|AvgEndAcc|AvgFinalAcc|mean|half|beta|score.*|.*_mean)$")
# Counts and settings that any rerun must give exactly (a different count is a change).
EXACT_KEYS = {
    "iterations_per_experience",
    "n_iterations",
    "n_parameters",
    "train_mb_size",
    "eval_samples",
    "tasks",
    "reference",
    "avg_accuracy_kind",
}


@lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _build_line(config: str, pattern: str) -> Optional[str]:
    m = re.search(pattern, config)
    return m.group(1).strip() if m else None


def platform_fingerprint(device: Any = "cpu") -> dict:
    """What decides a cell's float sums on this machine: CPU model and architecture, the ISA
    level torch dispatches to (``ATEN_CPU_CAPABILITY`` lowers it), BLAS and oneDNN builds,
    torch / numpy / Python versions, torch's thread count; on a GPU its name, CUDA and
    cuDNN versions."""
    import numpy as np
    import torch

    config = torch.__config__.show()
    fp = {
        "cpu": _cpu_model(),
        "machine": platform.machine(),
        "isa": torch.backends.cpu.get_cpu_capability(),
        "blas": _build_line(config, r"BLAS_INFO=([^,\n]+)"),
        "mkl": _build_line(config, r"Math Kernel Library Version ([^\n]+?) for"),
        "onednn": _build_line(config, r"MKL-DNN (v[0-9.]+)"),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "device": "cpu",
    }
    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        fp["device"] = torch.cuda.get_device_name(dev)
        fp["cuda"] = torch.version.cuda
        fp["cudnn"] = torch.backends.cudnn.version()
    elif dev.type != "cpu":
        fp["device"] = str(dev)
    return fp


def same_platform(stored: Optional[dict], here: dict) -> bool:
    """Whether a stored fingerprint is this one (then a rerun must be bit-identical)."""
    return bool(stored) and dict(stored) == dict(here)


def printed(cell: dict) -> dict:
    """What a report prints of a saved cell, as JSON values (NaN as "nan"): the accuracy
    metrics and the typed measures' records (transfer without its probes' wall time)."""
    from ..results import CellResult
    from .results import _clean

    rec = CellResult.from_dict(cell)
    out: dict = {"metrics": rec.metrics}
    if rec.measures.transfer is not None:
        t = rec.measures.transfer.to_dict()
        t.pop("probe_seconds", None)
        out["transfer"] = t
    if rec.measures.stability_gap is not None:
        out["stability_gap"] = rec.measures.stability_gap.to_dict()
    return json.loads(json.dumps(_clean(out)))


def _leaves(obj: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    if isinstance(obj, dict):
        for k in sorted(obj):
            yield from _leaves(obj[k], path + (str(k),))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, path + (i,))
    else:
        yield path, obj


def _kind(path: tuple) -> str:
    keys = [p for p in path if isinstance(p, str)]
    if any(k in EXACT_KEYS for k in keys):
        return "exact"
    if len(path) >= 3 and path[0] == "metrics" and path[1] in PER_EXPERIENCE and path[2] == 0:
        return "first"
    return "mean" if keys and SUMMARY_KEYS.match(keys[-1]) and path[-1] == keys[-1] else "value"


def differences(stored: dict, again: dict, exact: bool) -> list[str]:
    """The differences between two printed records (:func:`printed`), one line each; none
    means the rerun reproduces the stored cell. ``exact``: every value bit for bit; else
    numbers within :data:`TOLERANCE` and everything else (structure, counts, settings,
    which values are missing) exactly."""
    a, b = dict(_leaves(stored)), dict(_leaves(again))
    out = []
    for path in sorted(set(a) | set(b), key=str):
        where = "/".join(map(str, path))
        if path not in a or path not in b:
            out.append(f"{where}: only in the {'stored' if path in a else 'rerun'} record")
            continue
        x, y = a[path], b[path]
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y))
        if exact or not numbers or _kind(path) == "exact":
            if x != y:
                out.append(f"{where}: stored {x!r}, rerun {y!r}")
            continue
        tol = TOLERANCE[_kind(path)]
        if not math.isclose(x, y, rel_tol=0.0, abs_tol=tol):
            out.append(f"{where}: stored {x!r}, rerun {y!r} (differ by {abs(x - y):.4g} > {tol})")
    return out


def spread(stored: dict, again: dict) -> dict[str, float]:
    """The largest absolute difference per kind of number (``value``, ``mean``) between two
    printed records with the same structure; ``exact`` counts the unequal exact values."""
    a, b = dict(_leaves(stored)), dict(_leaves(again))
    out = {"first": 0.0, "value": 0.0, "mean": 0.0, "exact": 0.0}
    for path in set(a) & set(b):
        x, y = a[path], b[path]
        kind = _kind(path)
        if kind == "exact" or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y)
        ):
            out["exact"] += float(x != y)
        else:
            out[kind] = max(out[kind], abs(x - y))
    return out


def _stored_platform(cell: dict) -> dict:
    """The stored fingerprint, or for a cell stored without one what is known of its
    platform: :data:`LEGACY_ISA`, its versions and thread count."""
    host = cell.get("host") or {}
    if host.get("fingerprint"):
        return dict(host["fingerprint"])
    v = cell.get("versions") or {}
    return {
        "isa": LEGACY_ISA,
        "torch": v.get("torch"),
        "numpy": v.get("numpy"),
        "python": v.get("python"),
        "threads": host.get("torch_threads"),
        "device": "cpu",
    }


def emulation(cell: dict, here: dict) -> Optional[dict]:
    """Environment variables under which this machine selects the stored cell's kernels
    (``ATEN_CPU_CAPABILITY``), or None where it cannot: other torch or numpy, a GPU cell,
    a non-x86 level, a stored level above this CPU's, another BLAS/oneDNN build."""
    fp = _stored_platform(cell)
    if (fp.get("torch"), fp.get("numpy"), fp.get("device", "cpu")) != (
        here["torch"],
        here["numpy"],
        "cpu",
    ):
        return None
    if fp.get("isa") not in ISA_LEVELS or here["isa"] not in ISA_LEVELS:
        return None
    if ISA_LEVELS.index(fp["isa"]) > ISA_LEVELS.index(here["isa"]):
        return None
    if any(k in fp and fp[k] != here.get(k) for k in ("machine", "blas", "mkl", "onednn")):
        return None
    return {"ATEN_CPU_CAPABILITY": fp["isa"].lower()}


def rerun_in_subprocess(cfg: dict, env: dict, threads: Optional[int], root: Optional[str]) -> dict:
    """Run a cell in a fresh interpreter with ``env`` added (the ISA level is read when
    torch loads, so it cannot change in this process); its result."""
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = os.path.join(tmp, "cfg.json"), os.path.join(tmp, "result.json")
        with open(inp, "w", encoding="utf-8") as f:
            json.dump({"cfg": cfg, "threads": threads, "root": root}, f)
        subprocess.run(
            [sys.executable, "-m", __name__, inp, out], check=True, env={**os.environ, **env}
        )
        with open(out, encoding="utf-8") as f:
            return json.load(f)


def compare(stored: dict, rerun: Any, root: Optional[str] = None) -> tuple[str, list[str]]:
    """Rerun ``stored`` (``rerun(cfg, threads)`` runs a cell in this process) and compare it
    in the strictest mode this machine allows: ``(mode, differences)``."""
    from .results import _clean

    threads = (stored.get("host") or {}).get("torch_threads")
    cfg = json.loads(json.dumps(stored["config"]))
    here = platform_fingerprint()
    fp = (stored.get("host") or {}).get("fingerprint")
    if fp and same_platform(fp, {**here, "threads": fp.get("threads")}):
        again = json.loads(json.dumps(_clean(rerun(cfg, threads))))
        return "exact (same platform fingerprint)", differences(
            printed(stored), printed(again), exact=True
        )
    env = emulation(stored, here)
    if env is not None:
        again = rerun_in_subprocess(cfg, env, threads, root)
        diff = differences(printed(stored), printed(again), exact=True)
        if not diff:
            return f"exact (emulated: ATEN_CPU_CAPABILITY={env['ATEN_CPU_CAPABILITY']})", []
        return (
            f"tolerance (the emulated rerun at {env['ATEN_CPU_CAPABILITY']} is not bit-identical: "
            "another CPU's BLAS paths)",
            differences(printed(stored), printed(again), exact=False),
        )
    again = json.loads(json.dumps(_clean(rerun(cfg, threads))))
    return "tolerance (another platform)", differences(printed(stored), printed(again), exact=False)


def _main(argv: list[str]) -> None:
    from .cell import run_cell
    from .results import _clean

    with open(argv[0], encoding="utf-8") as f:
        job = json.load(f)
    result = run_cell(job["cfg"], root=job["root"], threads=job["threads"])
    with open(argv[1], "w", encoding="utf-8") as f:
        json.dump(_clean(result), f)


if __name__ == "__main__":
    _main(sys.argv[1:])
