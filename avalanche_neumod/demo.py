"""``make demo``: run the ``smoke`` suite into ``runs/smoke`` and write ``reports/smoke/``.

The same as::

    neumod run smoke --preset cpu --out runs/smoke --resume
    neumod report runs/smoke --out reports/smoke

A second ``make demo`` finds every cell finished and only rewrites the report;
delete ``runs/smoke`` to run it again from scratch. When the ``smoke`` suite has changed
since the folder was made (a newer version of the library), its cells would be refused as
another configuration; when its cells were made by other code (another git commit or
package version: a changed default is not in the configuration), they would be kept and
describe the old code. In both cases the folder is moved aside to
``runs/smoke.before-<time>`` (nothing is deleted) and the demo starts afresh.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from .cli import main as neumod
from .experiment.launch import foreign_cells, other_code
from .experiment.suite import load_suite


def set_aside_if_stale(out: Path) -> Optional[Path]:
    """Move ``out`` aside when it holds cells the current ``smoke`` suite would refuse, or
    cells made by other code; return where it went (None when it is current or absent)."""
    if not out.is_dir():
        return None
    other = other_code(out)
    if foreign_cells(load_suite("smoke", "cpu"), out):
        why = "another version of the smoke suite"
    elif other:
        why = "other code (" + ", ".join(sorted(other)) + ")"
    else:
        return None
    dest = out.with_name(f"{out.name}.before-{time.strftime('%Y%m%d-%H%M%S')}")
    out.rename(dest)
    print(f"{out} was made by {why}: moved to {dest}", file=sys.stderr)
    return dest


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/smoke", help="run folder (default runs/smoke)")
    ap.add_argument("--report", default="reports/smoke", help="report folder")
    ap.add_argument("--jobs", type=int, default=1, help="cells run at once")
    args = ap.parse_args(argv)
    set_aside_if_stale(Path(args.out))
    rc = neumod(
        ["run", "smoke", "--preset", "cpu", "--out", args.out, "--resume", "--jobs", str(args.jobs)]
    )
    if rc == 2:
        return rc
    rc_report = neumod(["report", args.out, "--out", args.report])
    print(f"open {args.report}/report.md", file=sys.stderr)
    return rc or rc_report


if __name__ == "__main__":
    raise SystemExit(main())
