"""What the cost rollups answer (projections/costs.py keeps them): a query, a grouping, and the
group of rows each answer line sums."""

from __future__ import annotations

from typing import Literal

import msgspec

from projections.costs import UNITS, CostKey, CostTotals

Grouping = Literal["day", "model", "project", "agent", "task", "execution"]
# the key columns each grouping sums over, in the order they are shown
GROUP_COLUMNS: dict[str, tuple[str, ...]] = {
    "day": ("day",),
    "model": ("provider", "model"),
    "project": ("project_id",),
    "agent": ("agent",),
    "task": ("project_id", "task_id"),
    "execution": ("project_id", "task_id", "execution_id", "agent"),
}


class CostQuery(msgspec.Struct, frozen=True, kw_only=True):
    """``day_from``/``day_to``: UTC days (YYYY-MM-DD), both included; None: unbounded."""

    project_id: str | None = None
    day_from: str | None = None
    day_to: str | None = None
    page: int = 1
    page_size: int = 50


class CostGroup(msgspec.Struct, frozen=True, kw_only=True):
    """One answer line: the grouping's key values (column to value) and their totals."""

    key: dict[str, str]
    totals: CostTotals


class CostRow(msgspec.Struct, frozen=True, kw_only=True):
    key: CostKey
    totals: CostTotals


def dollars(totals: CostTotals) -> float:
    return totals.cost_units / UNITS
