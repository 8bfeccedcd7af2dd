"""Hardware descriptions: memory levels, MAC cost, PE array; bundled YAML presets."""

from .hardware import Hardware, PEArray
from .level import LevelKind, MemoryLevel
from .loader import hardware_from_dict, list_presets, load_hardware
from .mac import MacCost
from .sparse import ZeroAction, ZeroActions

__all__ = ["Hardware", "PEArray", "LevelKind", "MemoryLevel", "MacCost", "load_hardware", "hardware_from_dict", "list_presets", "ZeroAction", "ZeroActions"]
