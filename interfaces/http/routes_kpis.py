"""The dashboard's KPIs (docs/api.md, "KPIs"): one answer for the caller's team, or one project."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from application.kpis import kpis
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.inputs import Query, actor, call, read_after
from interfaces.http.role import services_of


async def summary(request: Request) -> Response:
    project_ref = Query(request, {"project_id"}).text("project_id", 100)
    await read_after(request)
    services = services_of(request)
    data = await call(
        kpis, services.store, services.read_model, actor(request).team_id, project_ref
    )
    return ok(request, data)


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/kpis",
        summary,
        "Projects, tasks per status, success rate, total cost, models and providers in use",
        "costs",
        query=("project_id", "min_position"),
    ),
]
