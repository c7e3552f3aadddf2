"""Tables and figures from saved results (``neumod report``); reads saved results only."""

from .report import build_report, write_report
from .results_view import Stat, View

__all__ = ["Stat", "View", "build_report", "write_report"]
