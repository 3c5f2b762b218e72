"""Seed 001's team settings: ``/api/settings`` and its alias ``/api/system/settings``; both
writes are partial updates (``POST`` as in seed 001, ``PATCH`` on the alias)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from application.team_settings import UpdateSettings, read_settings, update_settings
from domain.values import Permission
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.errors import written
from interfaces.http.inputs import Query, actor, body, call
from interfaces.http.role import store_of


async def read(request: Request) -> Response:
    Query(request, set())
    data = await call(read_settings, store_of(request), actor(request).team_id)
    return ok(request, data)


async def update(request: Request) -> Response:
    cmd = await body(request, UpdateSettings)
    return written(request, await call(update_settings, store_of(request), cmd, actor(request)))


def _pair(path: str, write: str, alias: str) -> list[Endpoint]:
    return [
        Endpoint("GET", path, read, f"The team's settings{alias}", "settings"),
        Endpoint(
            write,
            path,
            update,
            f"Change some of the team's settings{alias}",
            "settings",
            UpdateSettings,
            permission=Permission.ADMIN,
        ),
    ]


ENDPOINTS = [
    *_pair("/api/settings", "POST", ""),
    *_pair("/api/system/settings", "PATCH", " (alias of /api/settings)"),
]
