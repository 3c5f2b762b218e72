"""Authentication endpoints: login, refresh (rotating), logout, me, admin-key token minting."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from application import auth
from application.commands import Login, MintToken, RefreshToken
from application.users import user_data
from domain.user import User
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.inputs import body, call
from interfaces.http.role import services_of, store_of


async def login(request: Request) -> Response:
    cmd = await body(request, Login)
    services = services_of(request)
    data = await call(
        auth.login,
        services.store,
        services.codec,
        services.hasher,
        cmd.username,
        cmd.password,
        services.settings.refresh_ttl,
        request.state.request_id,
    )
    return ok(request, data)


async def refresh(request: Request) -> Response:
    cmd = await body(request, RefreshToken)
    services = services_of(request)
    data = await call(
        auth.refresh,
        services.store,
        services.codec,
        cmd.refresh_token,
        services.settings.refresh_ttl,
        grace_seconds=services.settings.refresh_reuse_grace_seconds,
    )
    return ok(request, data)


async def logout(request: Request) -> Response:
    cmd = await body(request, RefreshToken)
    await call(auth.logout, store_of(request), cmd.refresh_token)
    return ok(request, {"message": "Logged out"})


async def me(request: Request) -> Response:
    principal = request.state.principal
    data = {
        "actor_id": principal.actor_id,
        "kind": principal.kind,
        "team_id": principal.team_id,
        "role": principal.role,
        "project_id": principal.project_id,
        "user": None,
    }
    if principal.user_id:
        store = store_of(request)
        user = await call(store.load, User, principal.user_uuid, principal.team_id, "user")
        data["user"] = user_data(user)
    return ok(request, data)


async def mint(request: Request) -> Response:
    cmd = await body(request, MintToken)
    services = services_of(request)
    data = auth.mint_token(
        services.codec,
        services.settings.admin_key,
        request.headers.get("x-admin-key"),
        cmd.team_id,
        cmd.role,
    )
    return ok(request, data, 201)


ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/auth/login",
        login,
        "Log in: access and refresh tokens",
        "auth",
        Login,
        public=True,
    ),
    Endpoint(
        "POST",
        "/api/auth/refresh",
        refresh,
        "Rotate a refresh token",
        "auth",
        RefreshToken,
        public=True,
    ),
    Endpoint(
        "POST",
        "/api/auth/logout",
        logout,
        "Revoke a refresh token's session",
        "auth",
        RefreshToken,
        public=True,
    ),
    Endpoint("GET", "/api/auth/me", me, "Who am I", "auth"),
    Endpoint(
        "POST",
        "/api/auth/token",
        mint,
        "Mint a team/role token with X-Admin-Key",
        "auth",
        MintToken,
        201,
        headers=("X-Admin-Key",),
        public=True,
    ),
]
