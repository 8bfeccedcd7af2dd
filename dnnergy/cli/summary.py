"""``dnnergy summary --csv``: every Layer field, one row per layer (the tables are in ``dnnergy.report.tables``)."""

from __future__ import annotations

import csv
import io

from ..workload import Workload

__all__ = ["summary_csv"]


def summary_csv(workload: Workload) -> str:
    """CSV with one row per layer (all Layer fields)."""
    records = workload.to_records()
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]) if records else ["name"])
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()
