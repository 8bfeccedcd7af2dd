"""Views of results for people: per-layer breakdowns, report tables of plain values, and plots.

The names below are imported on first use (PEP 562), as in ``dnnergy/__init__.py``, so a
listing that needs only :class:`Table` (``dnnergy zoo``) never imports matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

# Exported name -> the submodule that defines it.
_EXPORTS = {
    "layer_breakdown": ".breakdown",
    "plot_breakdown": ".plots",
    "plot_tradeoff": ".plots",
    "plot_history": ".plots",
    **{name: ".tables" for name in ("Table", "summary_table", "energy_table", "zoo_table", "record_table", "points_table",
                                    "unsupported_lines", "share_lines", "budget_lines")},
}

__all__ = ["layer_breakdown", "plot_breakdown", "plot_tradeoff", "plot_history", "Table", "summary_table", "energy_table", "zoo_table",
           "record_table", "points_table", "unsupported_lines", "share_lines", "budget_lines"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
