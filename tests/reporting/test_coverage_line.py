"""The report's coverage line names the suite's streams and methods a folder lacks."""

from avalanche_neumod.reporting.report import _coverage

SUITE = {
    "stream_order": ["rl", "pm"],
    "method_order": ["Naive", "CBP", "NeuMoSync"],
    "streams": {"rl": {"label": "Random-Label MNIST"}, "pm": {"label": "Permuted MNIST"}},
}


def _cell(stream, method, tuning=None):
    return {"config": {"stream_key": stream, "method_key": method, "tuning": tuning}}


def test_coverage_names_missing_streams_and_methods_by_label():
    lines = _coverage(SUITE, [_cell("pm", "Naive"), _cell("pm", "CBP", {"index": 0})])
    assert len(lines) == 2 and lines[1] == ""
    assert "not run here: streams Random-Label MNIST; methods NeuMoSync." in lines[0]


def test_coverage_is_silent_when_the_folder_covers_the_suite():
    cells = [_cell(s, m) for s in ("rl", "pm") for m in ("Naive", "CBP", "NeuMoSync")]
    assert _coverage(SUITE, cells) == []
    assert _coverage({}, cells) == []  # no manifest: nothing to compare with


def test_require_note_names_the_rule_in_its_units():
    from types import SimpleNamespace

    from avalanche_neumod.reporting.tables import _require_note

    view = SimpleNamespace(stream_label=lambda k: {"rl": "Random-Label MNIST"}.get(k, k))
    assert _require_note(None, view) == ""
    fit = _require_note({"metric": "accuracy_matrix.0.0", "min": 0.95, "streams": ["rl"]}, view)
    assert "On Random-Label MNIST" in fit and "task 1" in fit and "below 95 %" in fit
    other = _require_note({"metric": "measures.transfer.LCA_F", "min": 0.3}, view)
    assert "On every stream" in other and "`measures.transfer.LCA_F` is below 0.3" in other
