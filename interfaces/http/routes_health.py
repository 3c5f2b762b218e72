"""Probes and system information: /health, /ready, /metrics, seed 000's /api/health.

/ready also answers 503 while a consumer of the log running in this process is stuck (failing
on one position for over TASKWARDEN_READY_STUCK_SECONDS), is quarantining an event, or is over
TASKWARDEN_READY_MAX_LAG positions behind (docs/operations.md, "Health thresholds")."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from infrastructure.event_store import probe
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import JSON, now, ok
from interfaces.http.inputs import call
from interfaces.http.metrics import consumer_metrics
from interfaces.http.role import services_of

HEAD_WAIT = 2.0  # seconds to learn a consumer's head for its lag


def _uptime(request: Request) -> float:
    return round(time.monotonic() - request.app.state.started, 3)


async def health(request: Request) -> Response:
    """Liveness: the process answers. Never touches a dependency."""
    return JSON({"status": "ok"})


async def _check_store(request: Request) -> dict[str, object]:
    services = services_of(request)
    started = time.perf_counter()
    try:
        table = services.store.events_table
        await call(probe, services.settings, table)
        await call(services.read_model.ping)
        position = await call(services.store.max_position)
    except Exception as error:  # noqa: BLE001 - a probe reports any failure as unhealthy
        return {"status": "unhealthy", "error": type(error).__name__}
    elapsed = round((time.perf_counter() - started) * 1000, 2)
    return {"status": "healthy", "response_time": elapsed, "position": position}


async def _check_bus(request: Request) -> dict[str, object]:
    """The bus answers (NATS: connected, the stream reachable), with the relay's position, lag
    and last error when this process runs it."""
    services = services_of(request)
    health = getattr(services.bus, "health", None)
    check: dict[str, object] = {"status": "healthy", "kind": type(services.bus).__name__}
    if health is not None:
        try:
            async with asyncio.timeout(3.0):
                check = await health()
        except Exception as error:  # noqa: BLE001 - a probe reports any failure as unhealthy
            check = {"status": "unhealthy", "error": type(error).__name__}
    if services.relay.running:
        check["relay"] = services.relay.status()
    return check


async def _check_consumers(request: Request) -> dict[str, object]:
    """Each consumer of the log this process runs, in one shape, and what is wrong with them."""
    services = services_of(request)
    settings = services.settings
    items, problems = [], []
    for state, head in services.consumers:
        if not state.running:
            continue
        position = await _head(head)
        items.append(state.status(position))
        problems += state.problems(position, settings.ready_stuck_seconds, settings.ready_max_lag)
    status = "unhealthy" if problems else "healthy"
    return {"status": status, "problems": problems, "consumers": items}


async def _head(head: Any) -> int | None:
    """The consumer's head (for its lag); None when it has none or it cannot be read now."""
    if head is None:
        return None
    try:
        async with asyncio.timeout(HEAD_WAIT):
            return int(await head())
    except Exception:  # noqa: BLE001 - the lag is unknown; the store check reports the outage
        return None


async def ready(request: Request) -> Response:
    """Readiness: the event store, the read model and the bus answer, and no consumer of the log
    in this process is stuck, quarantining or too far behind; else 503."""
    store = await _check_store(request)
    bus = await _check_bus(request)
    consumers = await _check_consumers(request)
    healthy = all(c["status"] == "healthy" for c in (store, bus, consumers))
    status = 200 if healthy else 503
    return JSON(
        {
            "status": "ready" if status == 200 else "unavailable",
            "checks": {"database": store, "bus": bus, "consumers": consumers},
        },
        status,
    )


async def api_health(request: Request) -> Response:
    return ok(
        request,
        {
            "status": "healthy",
            "timestamp": now(),
            "uptime": _uptime(request),
            "version": request.app.state.settings.version,
        },
    )


async def api_health_detailed(request: Request) -> Response:
    services = services_of(request)
    store = await _check_store(request)
    head = store.get("position")
    projection = {
        "status": "healthy" if services.runner.position >= 0 else "unhealthy",
        "position": services.runner.position,
        "lag": max(0, (head if isinstance(head, int) else 0) - services.runner.position),
    }
    bus = await _check_bus(request)
    consumers = await _check_consumers(request)
    healthy = all(c["status"] == "healthy" for c in (store, bus, consumers))
    data = {
        "status": "healthy" if healthy else "unhealthy",
        "uptime": _uptime(request),
        "checks": {
            "database": store,
            "projections": projection,
            "bus": bus,
            "consumers": consumers,
        },
        "metrics": request.app.state.metrics.summary(),
    }
    return ok(request, data, status=200 if healthy else 503)


async def system_info(request: Request) -> Response:
    settings = request.app.state.settings
    return ok(
        request,
        {
            "version": settings.version,
            "environment": settings.environment,
            "storage": settings.event_store,
            "features": {
                "websocket_enabled": False,
                "projections_in_process": settings.run_projections,
            },
            "limits": {"max_body_bytes": settings.max_body_bytes, "max_page_size": 100},
        },
    )


async def metrics(request: Request) -> Response:
    services = services_of(request)
    head = await call(services.store.max_position)
    text = request.app.state.metrics.prometheus(head, services.runner.position)
    statuses = [state.status(await _head(h)) for state, h in services.consumers]
    text += consumer_metrics(statuses)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


LIVENESS = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"const": "ok"}},
}
READINESS = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"enum": ["ready", "unavailable"]},
        "checks": {"type": "object"},
    },
}

ENDPOINTS = [
    Endpoint("GET", "/health", health, "Liveness", "health", public=True, response=LIVENESS),
    Endpoint(
        "GET",
        "/ready",
        ready,
        "Readiness: event store, read model and bus reachable, no consumer of the log stuck, "
        "quarantining or too far behind (503 with the same body when not)",
        "health",
        public=True,
        response=READINESS,
    ),
    Endpoint(
        "GET",
        "/metrics",
        metrics,
        "Prometheus metrics",
        "health",
        public=True,
        media_type="text/plain",
        response={"type": "string"},
    ),
    Endpoint("GET", "/api/health/", api_health, "Health (seed 000)", "health", public=True),
    Endpoint(
        "GET", "/api/health/detailed", api_health_detailed, "Detailed health (seed 000)", "health"
    ),
    Endpoint("GET", "/api/system/info", system_info, "System information", "health"),
]
