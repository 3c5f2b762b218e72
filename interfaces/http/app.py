"""The app factory: nothing is built at import time; the lifespan builds and closes services."""

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
from infrastructure.settings import Settings
from interfaces.execution_host import ExecutionHost
from interfaces.http import (
    errors,
    routes_api_keys,
    routes_artifacts,
    routes_auth,
    routes_bulk,
    routes_execution,
    routes_health,
    routes_hitl,
    routes_programs,
    routes_projects,
    routes_quarantine,
    routes_queues,
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
from interfaces.http.metrics import MeasureRequests, Metrics
from interfaces.http.openapi import document
from interfaces.http.rate_limits import Policy, RateLimits
from interfaces.services import Services, build, migrate
from interfaces.webhook_host import WebhookHost
from interfaces.ws import endpoint as websocket
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
    *routes_workers.ENDPOINTS,
    *routes_webhooks.ENDPOINTS,
    *routes_quarantine.ENDPOINTS,
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
    services: Services | None = None,
    migrate_first: bool = False,
    bootstrap: bool = False,
) -> Starlette:
    """``services`` lets a test or a benchmark share one set; otherwise the lifespan builds them."""
    settings = settings or (services.settings if services else Settings.from_env())
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = services is None
        if own and migrate_first:
            migrate(settings)
        app.state.services = services or build(settings)
        if bootstrap:
            await _bootstrap_admin(app.state.services)
        host = ExecutionHost(app.state.services, settings.worker_count)
        if settings.worker_count > 0:
            host.start()
        app.state.execution = host
        relay = app.state.services.relay
        if settings.relay_in_process:  # the log's events to the bus (docs/architecture.md)
            relay.start()
        app.state.webhooks = WebhookHost(app.state.services)  # pings; the queue when embedded
        app.state.webhooks.start()
        websocket.start(app)
        try:
            yield
        finally:
            await websocket.stop(app)
            await app.state.webhooks.stop()
            await host.stop()
            await relay.stop()
            commands = getattr(app.state, "program_registry", None)
            if commands is not None:  # programs started by /api/commands: stopped and recorded
                await commands.close()
            if own:
                await app.state.services.bus.close()
                if app.state.services.rate_limiter is not None:
                    await app.state.services.rate_limiter.close()  # an async pool: on its loop
                app.state.services.close()

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
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.started = time.monotonic()
    return app
