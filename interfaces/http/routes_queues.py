"""Seed 000's queue endpoints: status, pause, resume, clear, metrics, priority; team-scoped."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from application import queues
from application.queues import ClearQueue, PauseQueue, ResumeQueue, SetQueuePriority
from domain.values import Permission
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.errors import written
from interfaces.http.inputs import Query, actor, body, call, read_after
from interfaces.http.role import services_of, store_of


def _idle_workers(request: Request) -> int:
    """This process's workers with nothing to do (remote ones are seen only while they run)."""
    host = getattr(request.app.state, "execution", None)
    if host is None:
        return 0
    return max(0, host.pool.size - host.pool.busy)


async def status(request: Request) -> Response:
    Query(request, set())
    await read_after(request)
    services = services_of(request)
    data = await call(
        queues.queue_status,
        services.read_model,
        services.store,
        actor(request).team_id,
        _idle_workers(request),
    )
    return ok(request, data)


async def metrics(request: Request) -> Response:
    query = Query(request, {"period"})
    period = query.choice("period", "24h", frozenset(queues.PERIODS))
    await read_after(request)
    services = services_of(request)
    data = await call(
        queues.queue_metrics, services.read_model, services.store, actor(request).team_id, period
    )
    return ok(request, data)


async def pause(request: Request) -> Response:
    cmd = await body(request, PauseQueue)
    result = await call(queues.pause_queue, store_of(request), cmd, actor(request))
    return written(request, result)


async def resume(request: Request) -> Response:
    cmd = await body(request, ResumeQueue)
    result = await call(queues.resume_queue, store_of(request), cmd, actor(request))
    return written(request, result)


async def clear(request: Request) -> Response:
    """Waits (bounded) for the views to show every execution queued before the request."""
    cmd = await body(request, ClearQueue)
    services = services_of(request)
    head = await call(services.store.max_position)
    await call(services.runner.wait_for, head, request.app.state.settings.read_wait_seconds)
    result = await call(
        queues.clear_queue, services.store, services.read_model, cmd, actor(request)
    )
    return written(request, result)


async def priority(request: Request) -> Response:
    cmd = await body(request, SetQueuePriority)
    result = await call(queues.set_priorities, store_of(request), cmd, actor(request))
    return written(request, result)


Q = "/api/queues"
ENDPOINTS = [
    Endpoint(
        "GET",
        Q + "/status",
        status,
        "Queue sizes, workers and performance",
        "queues",
        query=("min_position",),
    ),
    Endpoint(
        "GET",
        Q + "/metrics",
        metrics,
        "Outcomes, waiting and running times over a period",
        "queues",
        query=("period", "min_position"),
    ),
    Endpoint(
        "POST",
        Q + "/pause",
        pause,
        "Pause a queue: the scheduler skips it",
        "queues",
        PauseQueue,
        permission=Permission.OPERATE,
    ),
    Endpoint(
        "POST",
        Q + "/resume",
        resume,
        "Resume a paused queue",
        "queues",
        ResumeQueue,
        permission=Permission.OPERATE,
    ),
    Endpoint(
        "DELETE",
        Q + "/clear",
        clear,
        "Cancel every queued task of a queue",
        "queues",
        ClearQueue,
        permission=Permission.ADMIN,
    ),
    Endpoint(
        "POST",
        Q + "/priority",
        priority,
        "Set the priority of tasks (reorders the queue)",
        "queues",
        SetQueuePriority,
        permission=Permission.OPERATE,
    ),
]
