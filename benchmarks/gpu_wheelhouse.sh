#!/usr/bin/env bash
# Build wheelhouse/ for benchmarks/gpu_check.sh on a machine without a package registry:
# the wheels of benchmarks/gpu_requirements.txt (no torch, torchvision or CUDA libraries)
# for CPython 3.12 on x86_64 Linux, downloaded from PyPI here, then their total size.
#
#   bash benchmarks/gpu_wheelhouse.sh [--python-version 3.12] [--out DIR]
#
# wheelhouse/ is git-ignored: carry it to the device machine beside the repository
# (docs/suites.md#running-on-a-gpu).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$HERE/../wheelhouse"
PYV="3.12"
while [ $# -gt 0 ]; do
  case "$1" in
    --python-version) PYV="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "gpu_wheelhouse.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
find "$OUT" -name '*.whl' -exec mv -n {} "$OUT"/ \; 2>/dev/null || true  # rebuilt parts
# one requirement at a time: a wheel for the target Python where PyPI has one, else (a
# pure-Python project published as a source archive only, e.g. GPUtil) a wheel built here
grep -v '^#' "$HERE/gpu_requirements.txt" | while read -r req; do
  [ -n "$req" ] || continue
  "$PY" -m pip download --quiet --dest "$OUT" --no-deps --only-binary=:all: \
    --python-version "$PYV" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform linux_x86_64 "$req" 2>/dev/null \
  || "$PY" -m pip wheel --quiet --no-deps --wheel-dir "$OUT" "$req" 2>/dev/null \
  || { echo "gpu_wheelhouse.sh: no wheel for $req" >&2; exit 1; }
done
# in parts of at most PART_MIB (a device call carries at most 64 MiB: carry one part per
# call, each installed into the kept .gpu-site/ by gpu_check.sh --install-only)
"$PY" - "$OUT" "${PART_MIB:-60}" <<'PYEOF'
import pathlib, sys
out, cap = pathlib.Path(sys.argv[1]), float(sys.argv[2]) * 2**20
wheels = sorted(out.glob("*.whl"), key=lambda w: -w.stat().st_size)
parts: list[list] = []
for w in wheels:  # first fit, largest first
    for p in parts:
        if p[0] + w.stat().st_size <= cap:
            p[0] += w.stat().st_size; p[1].append(w); break
    else:
        parts.append([w.stat().st_size, [w]])
for i, (size, ws) in enumerate(parts, 1):
    d = out / f"part{i}"
    d.mkdir(exist_ok=True)
    for w in ws:
        w.rename(d / w.name)
    print(f"{d}: {len(ws)} wheels, {size / 2**20:.1f} MiB")
total = sum(p[0] for p in parts)
print(f"{sum(len(p[1]) for p in parts)} wheels, {total / 2**20:.1f} MiB in {len(parts)} part(s)")
PYEOF
