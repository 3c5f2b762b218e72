"""``POST /api/tasks/bulk``: seed 000's six operations, each item succeeding or failing alone."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from application.bulk import bulk_tasks
from application.commands import BulkTasks
from interfaces.http.endpoint import Endpoint
from interfaces.http.errors import written
from interfaces.http.inputs import actor, body, call
from interfaces.http.role import store_of


async def bulk(request: Request) -> Response:
    cmd = await body(request, BulkTasks)
    store = store_of(request)
    return written(request, await call(bulk_tasks, store, cmd, actor(request)))


ENDPOINTS = [
    Endpoint(
        "POST", "/api/tasks/bulk", bulk, "Apply one operation to many tasks", "tasks", BulkTasks
    ),
]
