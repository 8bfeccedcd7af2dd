"""Energy estimation: dataflow models, sparsity coding, ``estimate``, ``EnergyReport`` and ``profile``."""

from . import coding
from .dataflow import AccessCounts, Dataflow, get_dataflow, list_dataflows, register_dataflow
from .estimate import Coding, NonMac, ZeroMode, estimate
from .profile import profile
from .report import EnergyRecord, EnergyReport
from .mapper import RowStationarySearch
from .row_stationary import RowStationary
from .weights_once import WeightsOnce

__all__ = [
    "estimate",
    "profile",
    "EnergyReport",
    "EnergyRecord",
    "ZeroMode",
    "Coding",
    "NonMac",
    "AccessCounts",
    "Dataflow",
    "register_dataflow",
    "get_dataflow",
    "list_dataflows",
    "RowStationary",
    "RowStationarySearch",
    "WeightsOnce",
    "coding",
]
