"""Energy estimation: dataflow models, DRAM codes, ``estimate``, ``EnergyReport`` and ``profile``."""

from . import coding
from .codes import DramCode, RawCode, RlcCode, ZeroFlagCode, code_ratio, get_code, list_codes, register_code
from .formats import Coordinates, Csc
from .dataflow import AccessCounts, Dataflow, get_dataflow, list_dataflows, register_dataflow
from .estimate import NonMac, ZeroMode, estimate
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
    "NonMac",
    "DramCode",
    "RlcCode",
    "ZeroFlagCode",
    "RawCode",
    "register_code",
    "get_code",
    "list_codes",
    "code_ratio",
    "Csc",
    "Coordinates",
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
