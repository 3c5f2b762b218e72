"""User endpoints: team administration (admins only), and each user's profile and preferences.

``/api/users/profile`` and ``/api/users/preferences`` are declared before ``/api/users/{user_id}``
so that the fixed paths win.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from application import users
from application.commands import CreateUser, SetPreferences, Targeted, UpdateUser
from application.errors import NotFoundError
from domain.values import Permission
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.errors import written
from interfaces.http.inputs import Query, actor, body, call, expected_version, read_after
from interfaces.http.role import services_of, store_of


def _own_user_id(request: Request) -> str:
    """Profiles and preferences belong to users: a minted token or an API key has none."""
    principal = request.state.principal
    if principal.user_id is None:
        raise NotFoundError("user", principal.actor_id)
    return str(principal.user_id)


async def create(request: Request) -> Response:
    cmd = await body(request, CreateUser)
    by = actor(request)
    services = services_of(request)
    result = await call(users.create_user, services.store, services.hasher, cmd, by.team_id, by)
    return written(request, result)


async def listing(request: Request) -> Response:
    q = Query(request, {"page", "page_size", "limit", "offset", "order"})
    page, size = q.paging()
    order = q.choice("order", "asc", frozenset({"asc", "desc"}))
    store = store_of(request)
    data = await call(users.list_users, store, actor(request).team_id, page, size, order)
    return ok(request, data)


async def detail(request: Request) -> Response:
    Query(request, set())
    ref = request.path_params["user_id"]
    data = await call(users.get_user, store_of(request), ref, actor(request).team_id)
    return ok(request, data, headers={"ETag": f'"{data["version"]}"'})


async def update(request: Request) -> Response:
    cmd = Targeted(
        target=request.path_params["user_id"],
        command=await body(request, UpdateUser),
        expected_version=expected_version(request),
    )
    services = services_of(request)
    result = await call(users.update_user, services.store, services.hasher, cmd, actor(request))
    return written(request, result)


async def profile(request: Request) -> Response:
    Query(request, set())
    user_id = _own_user_id(request)
    by = actor(request)
    services = services_of(request)
    await read_after(request)
    data = await call(users.profile, services.store, services.read_model, user_id, by)
    return ok(request, data)


async def preferences(request: Request) -> Response:
    user_id = _own_user_id(request)
    chosen: dict[str, Any] = await body(request, dict[str, Any])
    cmd = Targeted(target=user_id, command=SetPreferences(preferences=chosen))
    store = store_of(request)
    return written(request, await call(users.set_preferences, store, cmd, actor(request)))


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/users/profile",
        profile,
        "The caller's profile: role, permissions, preferences, statistics",
        "users",
        query=("min_position",),
    ),
    Endpoint(
        "PUT",
        "/api/users/preferences",
        preferences,
        "Replace the caller's preferences with the JSON object sent (at most 16 KiB)",
        "users",
        permission=Permission.READ,  # a viewer sets their own preferences too
    ),
    Endpoint(
        "POST",
        "/api/users/",
        create,
        "Create a user in the caller's team",
        "users",
        CreateUser,
        201,
        permission=Permission.ADMIN,
    ),
    Endpoint(
        "GET",
        "/api/users/",
        listing,
        "List the team's users, in the order they joined",
        "users",
        query=("page", "page_size", "limit", "offset", "order"),
        permission=Permission.ADMIN,
    ),
    Endpoint(
        "GET",
        "/api/users/{user_id}",
        detail,
        "A user of the team",
        "users",
        permission=Permission.ADMIN,
    ),
    Endpoint(
        "PATCH",
        "/api/users/{user_id}",
        update,
        "Change a user's email, full name, role, password; disable or enable them",
        "users",
        UpdateUser,
        headers=("If-Match",),
        permission=Permission.ADMIN,
    ),
]
