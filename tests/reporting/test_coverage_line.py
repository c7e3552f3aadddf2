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
