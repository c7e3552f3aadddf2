"""The old import path of the result records: everything is :mod:`avalanche_neumod.records`
(``from avalanche_neumod.results import CellResult`` keeps working)."""

from .records import *  # noqa: F403
from .records import SCHEMA_VERSION, CellResult, migrate  # noqa: F401 - the documented names
