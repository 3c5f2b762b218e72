"""What the dashboard's KPIs (``GET /api/kpis``, docs/api.md) count in the read model: the live
projects, the live tasks per status, and the models and providers that reported usage (the cost
rollups, projections/costs.py). The total cost is the cost rollups' own total."""

from __future__ import annotations

import msgspec


class KpiCounts(msgspec.Struct, frozen=True, kw_only=True):
    projects: int = 0
    statuses: dict[str, int] = msgspec.field(default_factory=dict)  # only the statuses found
    models: int = 0  # distinct models named by usage (an unnamed model is not counted)
    providers: int = 0
