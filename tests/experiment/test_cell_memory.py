"""A finished cell leaves nothing behind in the process that ran it (``--jobs 1`` runs
every cell of a suite in one process: what a cell kept would pile up, cell after cell).

Avalanche's streams and experiences refer to each other (``experience.origin_stream``),
so a cell's data and model sit in reference cycles that only CPython's full collection
frees; in a process holding torch and Avalanche that collection seldom runs. The tests
turn the automatic collector off, so a cell's objects go only by the cell's own doing.
"""

from __future__ import annotations

import gc
import weakref

import pytest

from avalanche_neumod.experiment import registry
from avalanche_neumod.experiment.cell import run_cell
from avalanche_neumod.experiment.launch import run_suite
from avalanche_neumod.experiment.suite import expand, load_suite

Refs = dict[str, list[weakref.ref]]


@pytest.fixture
def no_automatic_gc():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture
def built(monkeypatch) -> tuple[Refs, list[dict[str, int]]]:
    """Weak references to every model, stream and experience dataset the cells build, and
    how many of them were alive each time a cell began building its stream."""
    refs: Refs = {"model": [], "stream": [], "data": []}
    at_start: list[dict[str, int]] = []
    build_model, build_stream = registry.build_model, registry.build_stream

    def model(*a, **k):
        m = build_model(*a, **k)
        refs["model"].append(weakref.ref(m))
        return m

    def stream(*a, **k):
        at_start.append(_alive(refs))
        bm = build_stream(*a, **k)
        refs["stream"].append(weakref.ref(bm))
        for exp in (*bm.train_stream, *bm.test_stream):
            refs["data"].append(weakref.ref(exp.dataset))
        return bm

    monkeypatch.setattr(registry, "build_model", model)
    monkeypatch.setattr(registry, "build_stream", stream)
    return refs, at_start


def _alive(refs: Refs) -> dict[str, int]:
    return {k: sum(r() is not None for r in v) for k, v in refs.items()}


NONE = {"model": 0, "stream": 0, "data": 0}


def test_sequential_launcher_frees_each_cell_before_the_next(
    tiny_suite, tmp_path, built, no_automatic_gc
):
    refs, at_start = built
    suite = load_suite(tiny_suite, "two_seeds")
    summary = run_suite(
        suite, str(tmp_path / "run"), methods=["FastNaive", "Naive"], jobs=1, progress=False
    )
    assert summary.count("ok") == len(summary.statuses) == 8
    # 8 cells: 4 on toy (3 experiences), 4 on toy2 (2): train and test datasets each
    assert [len(refs[k]) for k in ("model", "stream", "data")] == [8, 8, 4 * 6 + 4 * 4]
    assert at_start == [NONE] * 8  # nothing of the cells before when a cell starts
    assert _alive(refs) == NONE


def test_run_cell_frees_a_failed_cell(tiny_suite, built, no_automatic_gc):
    refs, _ = built
    (cfg,) = expand(load_suite(tiny_suite), methods=["FastNaive"], streams=["toy"])
    cfg["method"]["args"]["no_such_argument"] = 1  # the strategy refuses it: "failed"
    assert run_cell(cfg)["status"] == "failed"
    assert len(refs["stream"]) == 1 and len(refs["model"]) == 1
    assert _alive(refs) == NONE
