"""Tables and figures from saved results (``neumod report``); reads saved results only."""

from .report import build_report, write_report
from .run_view import Stat, View

__all__ = ["Stat", "View", "build_report", "write_report"]
