#!/usr/bin/env bash
# The device check: tests, one truncated cell of every suite's paper preset and the perf rows
# on one device, written to reports/gpu.md (docs/suites.md#running-on-a-gpu).
#
#   bash benchmarks/gpu_check.sh [--device cuda|cpu] [--quick] [--out FILE] [--wheelhouse DIR]
#                                [--install-only] [other options of benchmarks/gpu_check.py]
#
# On a machine without a package registry, what Python lacks is installed from the wheels in
# DIR (default: wheelhouse/ at the repository root, built by benchmarks/gpu_wheelhouse.sh),
# into .gpu-site/ (added to PYTHONPATH; nothing is installed system-wide). Exits non-zero when
# any step failed; every step's result is in the report either way.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
PY="${PYTHON:-python3}"
WHEELS="$REPO/wheelhouse"
DEVICE="cuda"
ARGS=()
INSTALL_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --wheelhouse) WHEELS="$2"; shift 2 ;;
    --install-only) INSTALL_ONLY=1; shift ;;
    --device) DEVICE="$2"; ARGS+=("--device" "$2"); shift 2 ;;
    -h|--help) sed -n 2,11p "$0"; exec "$PY" "$HERE/gpu_check.py" --help ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
case "$DEVICE" in
  cuda*|cpu|mps) ;;
  *) echo "gpu_check.sh: unknown --device '$DEVICE' (cuda, cuda:N, cpu or mps)" >&2; exit 2 ;;
esac
"$PY" -c "import torch" 2>/dev/null || { echo "gpu_check.sh: $PY cannot import torch" >&2; exit 2; }

SITE="$REPO/.gpu-site"
export PYTHONPATH="$REPO:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export MPLBACKEND=Agg
# The wheels of distributions this Python does not have yet (by name; no versions compared).
missing() {
  "$PY" - "$1" <<'PYEOF'
import importlib.metadata as md, pathlib, re, sys
for w in sorted(pathlib.Path(sys.argv[1]).rglob("*.whl")):
    name = re.sub(r"[-_.]+", "-", w.name.split("-")[0]).lower()
    try:
        md.distribution(name)
    except md.PackageNotFoundError:
        print(w)
PYEOF
}
if [ -d "$WHEELS" ]; then
  mapfile -t NEED < <(missing "$WHEELS")
  if [ "${#NEED[@]}" -gt 0 ]; then
    echo "gpu_check.sh: installing ${#NEED[@]} wheels from $WHEELS into $SITE"
    "$PY" -m pip install --quiet --no-index --no-deps --target "$SITE" "${NEED[@]}" \
      || echo "gpu_check.sh: installing wheels failed; the environment step will say what is missing" >&2
  fi
fi
"$PY" -c "import avalanche, yaml, pytest" 2>/dev/null \
  || echo "gpu_check.sh: avalanche-lib, pyyaml or pytest missing (no wheelhouse at $WHEELS?)" >&2
[ "$INSTALL_ONLY" = 1 ] && { echo "gpu_check.sh: installed; $(ls "$SITE" 2>/dev/null | wc -l) entries in $SITE"; exit 0; }
exec "$PY" "$HERE/gpu_check.py" "${ARGS[@]}"
