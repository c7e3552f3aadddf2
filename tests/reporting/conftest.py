"""The suite tests' fixtures (see tests/experiment/suite_fixtures.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiment"))

from suite_fixtures import tiny_suite, toy_on_path  # noqa: E402, F401
