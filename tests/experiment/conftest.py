"""The suite tests' fixtures (see suite_fixtures.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite_fixtures import tiny_suite, toy_on_path  # noqa: E402, F401
