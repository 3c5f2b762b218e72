"""API key endpoints (seed 003): issue, list, revoke. Team administration: admins only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from application import api_keys
from application.commands import CreateApiKey, RevokeApiKey, Targeted
from domain.values import Permission
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.errors import written
from interfaces.http.inputs import Query, actor, body, call
from interfaces.http.role import store_of


async def create(request: Request) -> Response:
    cmd = await body(request, CreateApiKey)
    result = await call(api_keys.issue_api_key, store_of(request), cmd, actor(request))
    return written(request, result)


async def listing(request: Request) -> Response:
    Query(request, set())
    data = await call(api_keys.list_api_keys, store_of(request), actor(request).team_id)
    return ok(request, data)


async def revoke(request: Request) -> Response:
    Query(request, set())
    cmd = Targeted(target=request.path_params["key_id"], command=RevokeApiKey())
    result = await call(api_keys.revoke_api_key, store_of(request), cmd, actor(request))
    return written(request, result)


ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/auth/api-keys",
        create,
        "Issue an API key; the secret (key) is shown in this answer only",
        "auth",
        CreateApiKey,
        201,
        permission=Permission.ADMIN,
    ),
    Endpoint(
        "GET",
        "/api/auth/api-keys",
        listing,
        "List the team's API keys (never their secrets)",
        "auth",
        permission=Permission.ADMIN,
    ),
    Endpoint(
        "DELETE",
        "/api/auth/api-keys/{key_id}",
        revoke,
        "Revoke an API key: refused from its next request on",
        "auth",
        permission=Permission.ADMIN,
    ),
]
