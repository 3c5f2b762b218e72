"""The dashboard's KPIs (seed 001's ``GET /api/kpis``): the team's projects, its tasks per status,
the success rate, the total cost and the models and providers in use, read from the read model
(the task and project listings and the cost rollups).

A caller narrowed to one project (a project-scoped key) counts that project only; a ``project_id``
filter is resolved through the Store first, so another team's project is not found.
"""

from __future__ import annotations

from typing import Any

from application.costs import COST_DIGITS
from application.listings import narrow_items
from application.store import Store
from domain.values import TERMINAL, TaskStatus
from projections.cost_rows import CostQuery, dollars
from projections.read_model import ReadModel


def success_rate(statuses: dict[str, int]) -> float:
    """Completed tasks as a percentage of the finished ones (completed, failed, cancelled or
    timed out), one decimal; 0.0 while none has finished."""
    finished = sum(statuses.get(s.value, 0) for s in TERMINAL)
    if not finished:
        return 0.0
    return round(100 * statuses.get(TaskStatus.COMPLETED.value, 0) / finished, 1)


def kpis(store: Store, views: ReadModel, team_id: str, project_ref: str | None) -> dict[str, Any]:
    project_id, _ = narrow_items(store, team_id, project_ref, None)
    counts = views.kpi_counts(team_id, project_id)
    totals = views.cost_totals(team_id, CostQuery(project_id=project_id))
    breakdown = {s.value: counts.statuses.get(s.value, 0) for s in TaskStatus}
    return {
        "total_projects": counts.projects,
        "total_tasks": sum(breakdown.values()),
        "status_breakdown": breakdown,
        "success_rate": success_rate(breakdown),
        "total_cost": round(dollars(totals), COST_DIGITS),
        "active_models": counts.models,
        "active_providers": counts.providers,
    }
