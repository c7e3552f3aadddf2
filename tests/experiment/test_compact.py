"""The compact cell format: lossless, deterministic, smaller; old plain folders still load."""

from __future__ import annotations

import gzip
import json
import math

import pytest

from avalanche_neumod.cli import main
from avalanche_neumod.experiment import compact
from avalanche_neumod.experiment.run_folder import (
    DamagedFile,
    cell_files,
    cell_path,
    compact_run,
    load_cell,
    read_json,
    scan_results,
    write_json_atomic,
)


def _doc() -> dict:
    f32 = [float(x) for x in __import__("numpy").linspace(0, 1, 50, dtype="float32")]
    return {
        "ints": list(range(-5, 40)),
        "f32": f32,
        "f64": [0.1 * i for i in range(30)],
        "mixed": [1, 2.0, 3, 4, 5, 6, 7, 8, 9],  # int and float: kept as JSON
        "with_nan": [0.5] * 10 + ["nan"],
        "matrix": [[0.25 * i + j for j in range(4)] for i in range(12)],
        "ragged": [[1.0], [1.0, 2.0]] * 5,
        "records": [
            {"iteration": i, "loss": 1.0 / (i + 1), "layers": {"1": [i, i]}} for i in range(20)
        ],
        "short": [1.0, 2.0],
        "big": [2**70] * 9,
        "nested": {"deep": [{"a": [0.1] * 9}] * 9},
        "empty": [],
        "bools": [True, False] * 5,
    }


def test_round_trip_keeps_every_value_and_type():
    doc = _doc()
    back = compact.loads(compact.dumps(doc))
    assert back == doc
    assert json.dumps(back, sort_keys=True) == json.dumps(doc, sort_keys=True)  # int vs float
    assert type(back["mixed"][1]) is float and type(back["mixed"][0]) is int
    assert type(back["bools"][0]) is bool


def test_arrays_are_binary_and_exact():
    enc = compact.encode_tree(_doc())
    assert enc["f32"][compact.ARRAY] == "f4"  # float32 values stored in 4 bytes
    assert enc["f64"][compact.ARRAY] == "f8"  # 0.1*i is not float32-exact: 8 bytes
    assert enc["ints"][compact.ARRAY] == "i8"
    assert enc["matrix"]["shape"] == [12, 4]
    assert compact.COLUMNS in enc["records"]
    assert isinstance(enc["mixed"], list) and isinstance(enc["with_nan"], list)
    assert isinstance(enc["big"], list)  # beyond int64: plain JSON
    assert isinstance(enc["short"], list)
    x = [math.nextafter(1.0, 2.0)] * 9  # one ulp above 1: a float32 would lose it
    assert compact.loads(compact.dumps({"x": x}))["x"] == x


def test_deterministic_and_smaller_than_indented_json():
    doc = {"loss": [1.0 / (i + 1) for i in range(5000)], "it": list(range(5000))}
    assert compact.dumps(doc) == compact.dumps(json.loads(json.dumps(doc)))
    plain = json.dumps(doc, indent=1).encode()
    assert len(compact.dumps(doc)) < len(plain) / 3
    assert json.loads(gzip.decompress(compact.dumps(doc)))  # a gzip-compressed JSON document


def test_marker_keys_refused():
    with pytest.raises(ValueError, match="cannot store"):
        compact.dumps({"x": {compact.ARRAY: 1}})


def _cell(cid: str) -> dict:
    return {
        "cell_id": cid,
        "status": "ok",
        "config": {"seed": 0},
        "schema_version": 2,
        "curves": {"loss": [0.5 / (i + 1) for i in range(100)]},
    }


def test_plain_folder_loads_and_rewrite_replaces_the_plain_file(tmp_path):
    cells = tmp_path / "cells"
    write_json_atomic(cells / "a.json", _cell("a"))  # a folder from before the compact format
    write_json_atomic(cell_path(tmp_path, "b"), _cell("b"))
    assert cell_path(tmp_path, "b").name == "b.json.gz"
    assert [r["cell_id"] for r in scan_results(tmp_path)[0]] == ["a", "b"]
    assert load_cell(tmp_path, "a") == _cell("a")
    write_json_atomic(cell_path(tmp_path, "a"), _cell("a"))  # a resumed run rewrites it
    assert sorted(p.name for p in cells.iterdir()) == ["a.json.gz", "b.json.gz"]


def test_compact_run_converts_without_loss_and_cli(tmp_path, capsys):
    for cid in ("a", "b"):
        write_json_atomic(tmp_path / "cells" / f"{cid}.json", _cell(cid))
    (tmp_path / "cells" / "bad.json").write_text("{not json")
    with pytest.warns(UserWarning, match="left as it is"):
        assert compact_run(tmp_path) == ["a", "b"]
    assert [p.name for p in cell_files(tmp_path)] == ["a.json.gz", "b.json.gz", "bad.json"]
    assert read_json(cell_path(tmp_path, "a")) == _cell("a")
    write_json_atomic(tmp_path / "cells" / "c.json", _cell("c"))
    assert main(["compact", str(tmp_path)]) == 0
    assert "1 cell file(s) rewritten compactly" in capsys.readouterr().out


def test_damaged_compact_file_is_named(tmp_path):
    p = cell_path(tmp_path, "a")
    write_json_atomic(p, _cell("a"))
    p.write_bytes(p.read_bytes()[:30])
    with pytest.raises(DamagedFile, match="a.json.gz is damaged"):
        read_json(p)
    p.write_bytes(b"not gzip at all")
    with pytest.raises(DamagedFile, match="BadGzipFile"):
        read_json(p)
    assert load_cell(tmp_path, "a") is None  # redone by --resume
