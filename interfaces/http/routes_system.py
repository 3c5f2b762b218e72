"""Seed 000's system events: admins announce maintenance and raise alerts for their team."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from application.system_notices import (
    AnnounceMaintenance,
    RaiseAlert,
    announce_maintenance,
    raise_alert,
)
from domain.values import Permission
from interfaces.http.endpoint import Endpoint
from interfaces.http.errors import written
from interfaces.http.inputs import actor, body, call
from interfaces.http.role import store_of


async def maintenance(request: Request) -> Response:
    cmd = await body(request, AnnounceMaintenance)
    store = store_of(request)
    return written(request, await call(announce_maintenance, store, cmd, actor(request)))


async def alert(request: Request) -> Response:
    cmd = await body(request, RaiseAlert)
    store = store_of(request)
    return written(request, await call(raise_alert, store, cmd, actor(request)))


ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/system/maintenance",
        maintenance,
        "Announce maintenance (the system.maintenance event)",
        "system",
        AnnounceMaintenance,
        201,
        permission=Permission.ADMIN,
    ),
    Endpoint(
        "POST",
        "/api/system/alerts",
        alert,
        "Raise an alert (the system.alert event)",
        "system",
        RaiseAlert,
        201,
        permission=Permission.ADMIN,
    ),
]
