"""The app factory: nothing is built at import time; the lifespan builds the api role, starts it
and stops it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from application.users import bootstrap_admin
from infrastructure import garbage_collection
from infrastructure.settings import Settings
from interfaces.bootstrap.api import ApiRole
from interfaces.http import (
    errors,
    routes_analytics,
    routes_api_keys,
    routes_artifacts,
    routes_audit,
    routes_auth,
    routes_bulk,
    routes_costs,
    routes_execution,
    routes_health,
    routes_hitl,
    routes_kpis,
    routes_pricing,
    routes_programs,
    routes_projects,
    routes_quarantine,
    routes_queues,
    routes_settings,
    routes_system,
    routes_tasks,
    routes_users,
    routes_webhooks,
    routes_workers,
)
from interfaces.http.docs_page import PAGE
from interfaces.http.endpoint import Endpoint, routes
from interfaces.http.envelope import JSON
from interfaces.http.identity import RequestContext
from interfaces.http.indexed_router import IndexedRouter
from interfaces.http.metrics import MeasureRequests, Metrics
from interfaces.http.openapi import document
from interfaces.http.rate_limits import Policy, RateLimits
from interfaces.services import Services, migrate
from interfaces.ws.endpoint import ROUTE as WEBSOCKET

ENDPOINTS: list[Endpoint] = [
    *routes_health.ENDPOINTS,
    *routes_auth.ENDPOINTS,
    *routes_api_keys.ENDPOINTS,
    *routes_users.ENDPOINTS,
    *routes_bulk.ENDPOINTS,
    *routes_tasks.ENDPOINTS,
    *routes_projects.ENDPOINTS,
    *routes_programs.ENDPOINTS,
    *routes_artifacts.ENDPOINTS,
    *routes_execution.ENDPOINTS,
    *routes_hitl.ENDPOINTS,
    *routes_queues.ENDPOINTS,
    *routes_system.ENDPOINTS,
    *routes_pricing.ENDPOINTS,
    *routes_costs.ENDPOINTS,
    *routes_kpis.ENDPOINTS,
    *routes_analytics.ENDPOINTS,
    *routes_settings.ENDPOINTS,
    *routes_workers.ENDPOINTS,
    *routes_webhooks.ENDPOINTS,
    *routes_quarantine.ENDPOINTS,
    *routes_audit.ENDPOINTS,
]


async def _bootstrap_admin(services: Services) -> None:
    """An empty store gets user ``admin`` (team ``default``); a generated password is shown once."""
    password = services.settings.admin_password
    generated = await run_in_threadpool(bootstrap_admin, services.store, services.hasher, password)
    if generated:
        print(  # shown once, on purpose, to whoever started the server
            f"created user admin (team default) with password: {generated}", flush=True
        )


def create_app(
    settings: Settings | None = None,
    *,
    api: ApiRole | None = None,
    migrate_first: bool = False,
    bootstrap: bool = False,
    settle: bool = False,
) -> Starlette:
    """``api``: a role built by a test or a benchmark; otherwise the lifespan builds one. Either
    way the lifespan starts it and stops it (``interfaces/bootstrap/api.py``). ``settle``: the
    app is its process's (``taskwarden serve``): the garbage collector is set for a long run
    once the role has started."""
    settings = settings or (api.settings if api else Settings.from_env())
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if api is None and migrate_first:
            migrate(settings)
        role = api or ApiRole.from_settings(settings)
        app.state.api = role  # read through interfaces/http/role.py
        if bootstrap:
            await _bootstrap_admin(role.services)
        role.start()
        if settle:  # a served process, not a test's app (infrastructure/garbage_collection.py)
            garbage_collection.settle()
        try:
            yield
        finally:
            await role.stop()

    spec = document(ENDPOINTS, settings.version)

    async def openapi(request: Request) -> Response:
        return JSON(spec)

    async def docs(request: Request) -> Response:
        return HTMLResponse(PAGE)

    app = Starlette(
        routes=[
            *routes(ENDPOINTS),
            Route("/openapi.json", openapi),
            Route("/docs", docs),
            WEBSOCKET,
        ],
        middleware=[
            Middleware(MeasureRequests, metrics=metrics),
            Middleware(RequestContext),
            Middleware(RateLimits, policy=Policy.from_settings(settings)),
        ],
        exception_handlers=errors.handlers(),
        lifespan=lifespan,
    )
    app.router = IndexedRouter(app.router.routes, lifespan=lifespan)  # before the first request
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.started = time.monotonic()
    return app
