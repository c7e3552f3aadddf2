"""``make demo``: run the ``smoke`` suite into ``runs/smoke`` and write ``reports/smoke/``.

The same as::

    neumod run smoke --preset cpu --out runs/smoke --resume
    neumod report runs/smoke --out reports/smoke

A second ``make demo`` finds every cell finished and only rewrites the report;
delete ``runs/smoke`` to run it again from scratch.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .cli import main as neumod


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/smoke", help="run folder (default runs/smoke)")
    ap.add_argument("--report", default="reports/smoke", help="report folder")
    ap.add_argument("--jobs", type=int, default=1, help="cells run at once")
    args = ap.parse_args(argv)
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
