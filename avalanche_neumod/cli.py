"""The ``neumod`` command line: ``neumod run``, ``neumod report``, ``neumod list``.

    neumod run SUITE --preset cpu --out runs/NAME [--seeds 0 1 2] [--methods A B]
                     [--streams S] [--resume] [--force-mixed] [--share RUN ...]
                     [--no-checkpoints]
                     [--launcher local|submitit] [--jobs N]
    neumod report runs/NAME --out reports/NAME
    neumod list [suites|presets|streams|methods|models]
    neumod compact runs/NAME      (plain cell files of an older folder -> compact ones)

Each verb imports what it needs when it runs: ``neumod --help`` and ``neumod list
suites|presets`` load neither torch nor Avalanche (``list methods|models|streams``
and ``run``/``report`` do). See ``docs/suites.md``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Optional, Sequence


def _parse_params(items: Optional[Sequence[str]]) -> dict:
    out = {}
    for it in items or []:
        if "=" not in it:
            raise ValueError(f"--submitit-param expects key=value, got {it!r}")
        k, v = it.split("=", 1)
        import yaml

        out[k] = yaml.safe_load(v)
    return out


def cmd_check(args) -> int:
    """Load the suite with its preset and check every value of every cell; run nothing."""
    from .experiment.suite import expand, load_suite

    suite = load_suite(args.suite, args.preset)
    n = len(expand(suite))
    print(
        f"suite {suite.name!r} (preset {suite.preset!r}, {suite.path}): ok, {n} cell(s): "
        f"{len(suite.streams)} stream(s) x {len(suite.methods)} method(s) x "
        f"{len(suite.seeds)} seed(s)"
    )
    return 0


def cmd_run(args) -> int:
    if args.dry_run:
        return cmd_check(args)
    from .experiment.launch import run_suite
    from .experiment.suite import load_suite

    suite = load_suite(args.suite, args.preset)
    out = args.out or os.path.join("runs", suite.name)
    command = "neumod " + " ".join(shlex.quote(a) for a in args.argv)
    summary = run_suite(
        suite,
        out,
        seeds=args.seeds,
        methods=args.methods,
        streams=args.streams,
        resume=args.resume,
        force_mixed=args.force_mixed,
        checkpoints=not args.no_checkpoints,
        launcher=args.launcher,
        jobs=args.jobs,
        cluster=args.cluster,
        submitit_params=_parse_params(args.submitit_param),
        root=args.data_root,
        progress=not args.no_progress,
        command=command,
        share=args.share or (),
    )
    print(summary.line())
    failed = summary.count("failed")
    if failed:
        print(
            f"{failed} cell(s) failed; see their JSON files' 'error' and 'traceback'",
            file=sys.stderr,
        )
    return 1 if failed else 0


def cmd_report(args) -> int:
    # light (no torch): refuse an empty folder before the rest
    from .experiment.results import CELL_SUFFIX, CELLS_DIR, cell_files

    if not cell_files(args.run):
        cells = os.path.join(args.run, CELLS_DIR)
        raise FileNotFoundError(f"no results in {args.run}: expected {cells}/<cell>{CELL_SUFFIX}")
    from .reporting.report import write_report

    out = args.out or os.path.join("reports", os.path.basename(os.path.normpath(args.run)))
    path, notes = write_report(args.run, out, with_notes=True)
    for note in notes:
        print(f"neumod report: warning: {note}", file=sys.stderr)
    print(f"wrote {path}")
    return 0


def cmd_compact(args) -> int:
    from .experiment.results import compact_run

    done = compact_run(args.run)
    print(f"{args.run}: {len(done)} cell file(s) rewritten compactly")
    return 0


def cmd_list(args) -> int:
    what = args.what
    if what in ("suites", "presets", "all"):
        from .experiment import suite
    if what in ("streams", "methods", "models", "all"):
        from .experiment import registry  # the tables import torch, Avalanche and our classes
    if what in ("suites", "all"):
        print("suites:")
        for name, path in sorted(suite.available_suites().items()):
            print(f"  {name:16s} {path}")
    if what in ("presets", "all"):
        print("presets:")
        for name, path in sorted(suite.available_suites().items()):
            try:
                presets = sorted(suite.read_yaml(path).get("presets") or {})
            except suite.SuiteError as e:
                presets = [f"(unreadable: {e})"]
            print(f"  {name:16s} {', '.join(presets)}")
    if what in ("streams", "all"):
        print("streams:")
        for name in registry.stream_names():
            print(f"  {name}")
    if what in ("methods", "all"):
        print("methods:")
        for name, spec in registry.METHODS.items():
            target = registry.target(spec)
            extra = ["own optimizer"] if spec.owns_optimizer else []
            extra += [f"tunable: {', '.join(spec.tunable)}"] if spec.tunable else []
            more = f" ({'; '.join(extra)})" if extra else ""
            print(f"  {name:14s} {spec.kind:9s} {target:52s} {spec.doc}{more}")
    if what in ("models", "all"):
        print("models:")
        for name, model in registry.MODELS.items():
            print(f"  {name:14s} {registry.import_path(model.fn):52s} {model.doc}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="neumod", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a suite's cells, one JSON result per cell")
    r.add_argument("suite", help="suite name (see `neumod list suites`) or path to a YAML file")
    r.add_argument("--preset", default="cpu", help="preset of the suite (default: cpu)")
    r.add_argument("--out", help="run folder (default: runs/<suite>)")
    r.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the preset's)")
    r.add_argument("--methods", nargs="+", help="run only these of the suite's methods")
    r.add_argument("--streams", nargs="+", help="run only these of the suite's streams")
    r.add_argument(
        "--resume",
        action="store_true",
        help="skip cells already finished; continue interrupted cells from their checkpoint",
    )
    r.add_argument(
        "--force-mixed",
        action="store_true",
        help="write into a run folder that holds cells of another suite or configuration "
        "(never overwriting them; the report lists each suite apart)",
    )
    r.add_argument(
        "--share",
        nargs="+",
        metavar="RUN",
        help="other run folders: a cell one of them finished at this code, training exactly "
        "what a cell of this run trains, is copied in instead of trained again",
    )
    r.add_argument(
        "--no-checkpoints",
        action="store_true",
        help="do not checkpoint cells at experience boundaries",
    )
    r.add_argument("--launcher", default="local", help="local (default) or submitit")
    r.add_argument("--jobs", type=int, default=1, help="cells run at once (default 1)")
    r.add_argument(
        "--cluster",
        help="submitit executor: slurm, local or debug (default: SLURM when available, else local)",
    )
    r.add_argument(
        "--submitit-param",
        action="append",
        metavar="KEY=VALUE",
        help="submitit executor parameter, e.g. slurm_partition=gpu, gpus_per_node=1 (repeatable)",
    )
    r.add_argument("--data-root", help="dataset root (default: $NEUMOD_DATA_ROOT)")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument(
        "--dry-run",
        action="store_true",
        help="only load and check the suite (as `neumod check`); run nothing",
    )
    r.set_defaults(func=cmd_run)

    c = sub.add_parser(
        "check", help="load a suite and check every value of every cell; run nothing"
    )
    c.add_argument("suite", help="suite name (see `neumod list suites`) or path to a YAML file")
    c.add_argument("--preset", default="cpu", help="preset of the suite (default: cpu)")
    c.set_defaults(func=cmd_check)

    p = sub.add_parser("report", help="write report.md with tables and figures from a run")
    p.add_argument("run", help="run folder (runs/NAME)")
    p.add_argument("--out", help="report folder (default: reports/<run name>)")
    p.set_defaults(func=cmd_report)

    c = sub.add_parser("compact", help="rewrite a run folder's plain cell files compactly")
    c.add_argument("run", help="run folder (runs/NAME)")
    c.set_defaults(func=cmd_compact)

    ls = sub.add_parser("list", help="list suites, presets, streams, methods or models")
    ls.add_argument(
        "what",
        nargs="?",
        default="all",
        choices=["all", "suites", "presets", "streams", "methods", "models"],
    )
    ls.set_defaults(func=cmd_list)
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except Exception as e:
        if not isinstance(e, _user_errors()):
            raise
        print(f"neumod {args.command}: error: {e}", file=sys.stderr)
        return 2


# The errors that are the user's input (reported in one line, exit status 2), by module: a
# verb can raise only those of modules it imported, so none is imported just to be caught.
_USER_ERRORS = {
    "avalanche_neumod.experiment.suite": "SuiteError",
    "avalanche_neumod.experiment.registry": "RegistryError",
    "avalanche_neumod.experiment.launch": "LaunchError",
    "avalanche_neumod.experiment.results": "DamagedFile",
}


def _user_errors() -> tuple[type[BaseException], ...]:
    found = [getattr(sys.modules[m], n) for m, n in _USER_ERRORS.items() if m in sys.modules]
    return (FileNotFoundError, *found)


if __name__ == "__main__":
    raise SystemExit(main())
