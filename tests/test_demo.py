"""``make demo`` keeps working after the smoke suite changes: a stale run folder is moved
aside, never deleted, and a current one is left in place."""

from __future__ import annotations

import json

from avalanche_neumod.demo import set_aside_if_stale
from avalanche_neumod.experiment.cell import versions
from avalanche_neumod.experiment.suite import expand, load_suite


def _write_cell(out, cfg, made_by=None):
    cells = out / "cells"
    cells.mkdir(parents=True, exist_ok=True)
    rec = {"schema_version": 2, "cell_id": cfg["cell_id"], "status": "ok", "config": cfg}
    rec["versions"] = made_by or versions()
    (cells / f"{cfg['cell_id']}.json").write_text(json.dumps(rec))


def test_stale_smoke_run_is_moved_aside_and_kept(tmp_path):
    cfg = expand(load_suite("smoke", "cpu"))[0]
    out = tmp_path / "smoke"
    _write_cell(out, cfg)
    assert set_aside_if_stale(out) is None and out.is_dir()  # current: left in place
    old = json.loads(json.dumps(cfg))
    old["method"]["args"] = {"m": 100}  # made by an earlier definition of the suite
    (out / "cells" / f"{cfg['cell_id']}.json").unlink()
    _write_cell(out, old)
    dest = set_aside_if_stale(out)
    assert dest is not None and not out.exists()
    assert dest.name.startswith("smoke.before-")
    assert json.loads((dest / "cells" / f"{cfg['cell_id']}.json").read_text())["config"] == old
    assert set_aside_if_stale(tmp_path / "absent") is None


def test_smoke_run_made_by_other_code_is_moved_aside(tmp_path):
    """Same suite, other code (a default may have changed): the demo starts afresh."""
    cfg = expand(load_suite("smoke", "cpu"))[0]
    out = tmp_path / "smoke"
    _write_cell(out, cfg, made_by={**versions(), "git_commit": "c" * 40})
    dest = set_aside_if_stale(out)
    assert dest is not None and not out.exists()
    assert (dest / "cells" / f"{cfg['cell_id']}.json").exists()
