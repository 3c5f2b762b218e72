"""A project's analytics (docs/analytics.md): seed 000's answer over a period of UTC days."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from application.analytics import DEFAULT_PERIOD, PERIODS, project_analytics
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.inputs import Query, actor, call, read_after
from interfaces.http.role import services_of


async def analytics(request: Request) -> Response:
    period = Query(request, {"period"}).choice("period", DEFAULT_PERIOD, frozenset(PERIODS))
    await read_after(request)
    services = services_of(request)
    data = await call(
        project_analytics,
        services.store,
        services.read_model,
        actor(request).team_id,
        request.path_params["project_id"],
        period,
    )
    return ok(request, data)


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/projects/{project_id}/analytics",
        analytics,
        "A project's task outcomes, trends, durations, people, pickup, waits and agents",
        "projects",
        query=("period", "min_position"),
    ),
]
