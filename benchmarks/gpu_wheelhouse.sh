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
echo "$(ls "$OUT"/*.whl | wc -l) wheels, $(du -sm "$OUT" | cut -f1) MiB in $OUT"
