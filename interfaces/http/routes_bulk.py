"""``POST /api/tasks/bulk``: seed 000's six operations, each item succeeding or failing alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from eventsourcing.persistence import IntegrityError
from starlette.requests import Request
from starlette.responses import Response

from application import tasks
from application.commands import (
    BulkAssignData,
    BulkDeleteData,
    BulkPriorityData,
    BulkStatusData,
    BulkTagsData,
    BulkTasks,
    DeleteTask,
    UpdateTask,
)
from application.errors import NotFoundError, VersionConflictError
from application.idempotency import Written
from application.store import Store
from domain.errors import DomainError
from domain.values import Actor
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.errors import describe
from interfaces.http.inputs import actor, body, call

# what one item may fail with; anything else fails the request
ITEM_ERRORS = (DomainError, NotFoundError, VersionConflictError, IntegrityError)

Operation = Callable[[Store, str, Actor], Written]


def _operation(cmd: BulkTasks) -> Operation:
    """Validates ``data`` for the operation (a bad one fails the whole request with 422)."""
    if cmd.operation == "update_status":
        s = msgspec.convert(cmd.data, BulkStatusData)
        fields: dict[str, Any] = {"status": s.status, "status_reason": s.reason}
        if s.progress_percentage is not None:
            fields["progress_percentage"] = s.progress_percentage
        update = UpdateTask(**fields)
        return lambda store, ref, by: tasks.update_task(store, ref, update, by)
    if cmd.operation == "assign":
        a = msgspec.convert(cmd.data, BulkAssignData)
        assign = UpdateTask(assigned_to=a.assigned_to)
        return lambda store, ref, by: tasks.update_task(store, ref, assign, by)
    if cmd.operation == "set_priority":
        p = msgspec.convert(cmd.data, BulkPriorityData)
        prio = UpdateTask(priority=p.priority)
        return lambda store, ref, by: tasks.update_task(store, ref, prio, by)
    if cmd.operation in ("add_tags", "remove_tags"):
        t = msgspec.convert(cmd.data, BulkTagsData)
        add, remove = (t.tags, []) if cmd.operation == "add_tags" else ([], t.tags)
        return lambda store, ref, by: tasks.tag_task(store, ref, add, remove, by)
    d = msgspec.convert(cmd.data, BulkDeleteData)
    delete = DeleteTask(reason=d.reason)
    return lambda store, ref, by: tasks.delete_task(store, ref, delete, by)


def _run_all(store: Store, cmd: BulkTasks, operation: Operation, by: Actor) -> dict[str, Any]:
    successful: list[str] = []
    failed: list[str] = []
    errors: list[dict[str, Any]] = []
    position = 0
    for ref in dict.fromkeys(cmd.task_ids):
        try:
            result = operation(store, ref, by)
        except ITEM_ERRORS as error:
            status, code, message, _ = describe(error)
            failed.append(ref)
            errors.append({"task_id": ref, "code": code, "message": message, "status": status})
        else:
            successful.append(ref)
            position = max(position, result.position)
    return {
        "operation": cmd.operation,
        "affected_count": len(successful),
        "successful": successful,
        "failed": failed,
        "errors": errors,
        "position": position,
    }


async def bulk(request: Request) -> Response:
    cmd = await body(request, BulkTasks)
    operation = _operation(cmd)
    store = request.app.state.services.store
    data = await call(_run_all, store, cmd, operation, actor(request))
    position = data.pop("position")
    position = position or await call(store.ledger.max_position)
    return ok(request, data, position=position, headers={"X-Position": str(position)})


ENDPOINTS = [
    Endpoint(
        "POST", "/api/tasks/bulk", bulk, "Apply one operation to many tasks", "tasks", BulkTasks
    ),
]
