"""Task endpoints: seed 000's CRUD and actions, seed 003's submit and status."""

from __future__ import annotations

import functools
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

from application import executions, history, tasks, timeline
from application.commands import (
    ApproveWork,
    CancelTask,
    CreateTask,
    DeleteTask,
    ExecuteTask,
    RejectWork,
    RetryTask,
    SubmitTask,
    Targeted,
    UpdateTask,
)
from application.representations import task_data
from domain.task import Task
from domain.values import Permission
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.errors import BadRequestError, written
from interfaces.http.inputs import (
    Query,
    actor,
    body,
    call,
    expected_version,
    idempotency,
    read_after,
)
from interfaces.http.listing import list_tasks
from interfaces.http.role import services_of, store_of

TASK_HEADERS = ("Idempotency-Key",)
HISTORY_VIEWS = frozenset({"timeline", "changes"})
C = TypeVar("C")


async def create(request: Request) -> Response:
    cmd = await body(request, CreateTask)
    store, by, key = store_of(request), actor(request), idempotency(request, cmd)
    result = None if key else await tasks.create_task_soon(store, cmd, by)
    if result is None:  # it needs the store: off the event loop
        result = await call(tasks.create_task, store, cmd, by, key)
    return written(request, result)


async def submit(request: Request) -> Response:
    cmd = await body(request, SubmitTask)
    result = await call(
        tasks.submit_task, store_of(request), cmd, actor(request), idempotency(request, cmd)
    )
    return written(request, result)


async def detail(request: Request) -> Response:
    query = Query(request, {"as_of"})
    ref = request.path_params["task_id"]
    by = actor(request)
    moment = query.as_of()
    if moment is not None:
        data = await call(history.task_as_of, store_of(request), ref, by.team_id, moment)
        return ok(request, data)
    task = await call(store_of(request).load_live, Task, ref, by.team_id, "task")
    return ok(request, task_data(task), headers={"ETag": f'"{task.version}"'})


async def status(request: Request) -> Response:
    """Seed 003's status shape, in the envelope."""
    Query(request, set())
    task = await call(
        store_of(request).load_live,
        Task,
        request.path_params["task_id"],
        actor(request).team_id,
        "task",
    )
    data = task_data(task)
    shaped = {
        "task_id": data["id"],
        "status": data["status"],
        "submitted_at": data["created_at"],
        "started_at": data["started_at"],
        "completed_at": data["completed_at"],
        "result": data["result"],
    }
    if data["status"] == "failed" and data["result"]:
        shaped["error"] = data["result"].get("error")
    return ok(request, shaped)


def _targeted(request: Request, command: C) -> Targeted[C]:
    """The command to the task of the path, at the version of ``If-Match`` if given."""
    return Targeted(
        target=request.path_params["task_id"],
        command=command,
        expected_version=expected_version(request),
    )


async def update(request: Request) -> Response:
    cmd = await body(request, UpdateTask)
    result = await call(
        tasks.update_task, store_of(request), _targeted(request, cmd), actor(request)
    )
    return written(request, result)


async def delete(request: Request) -> Response:
    query = Query(request, {"reason"})
    cmd = await body(request, DeleteTask, optional=True)
    if cmd.reason is None and query.text("reason", 2000):
        cmd = DeleteTask(reason=query.text("reason", 2000))
    result = await call(
        tasks.delete_task, store_of(request), _targeted(request, cmd), actor(request)
    )
    return written(request, result)


async def task_history(request: Request) -> Response:
    """The task's timeline (``application/timeline.py``), or ``?view=changes``: seed 000's
    change view, field by field."""
    query = Query(request, {"include", "after", "limit", "view"})
    view = query.choice("view", "timeline", HISTORY_VIEWS)
    after = query.integer("after", 0, 0, 10**18) or 0
    limit = query.integer("limit", timeline.DEFAULT_LIMIT, 1, timeline.MAX_LIMIT)
    kinds = timeline.chosen_kinds(query.words("include", frozenset(timeline.KINDS)))
    ref, team = request.path_params["task_id"], actor(request).team_id
    if view == "changes":
        if "include" in query.params:
            raise BadRequestError("include applies to the timeline view", field="include")
        data = await call(history.task_changes, store_of(request), ref, team, after, limit)
        return ok(request, data)
    q = timeline.TimelineQuery(kinds=kinds, after=after, limit=limit or timeline.DEFAULT_LIMIT)
    await read_after(request)  # ?min_position=: the items and output rows are the read model's
    services = services_of(request)
    data = await call(history.task_history, services.store, ref, team, services.read_model, q)
    return ok(request, data)


async def execute(request: Request) -> Response:
    cmd = await body(request, ExecuteTask, optional=True)
    result = await call(
        functools.partial(executions.request_execution, spending=services_of(request).read_model),
        store_of(request),
        Targeted(target=request.path_params["task_id"], command=cmd),
        actor(request),
        idempotency(request, cmd),
    )
    return written(request, result)


async def retry(request: Request) -> Response:
    cmd = await body(request, RetryTask, optional=True)
    result = await call(
        functools.partial(executions.retry_task, spending=services_of(request).read_model),
        store_of(request),
        Targeted(target=request.path_params["task_id"], command=cmd),
        actor(request),
        idempotency(request, cmd),
    )
    return written(request, result)


async def cancel(request: Request) -> Response:
    cmd = await body(request, CancelTask, optional=True)
    target = Targeted(target=request.path_params["task_id"], command=cmd)
    result = await call(executions.cancel_task, store_of(request), target, actor(request))
    return written(request, result)


async def approve(request: Request) -> Response:
    cmd = await body(request, ApproveWork, optional=True)
    target = Targeted(target=request.path_params["task_id"], command=cmd)
    result = await call(executions.approve_work, store_of(request), target, actor(request))
    return written(request, result)


async def reject(request: Request) -> Response:
    cmd = await body(request, RejectWork)
    target = Targeted(target=request.path_params["task_id"], command=cmd)
    result = await call(executions.reject_work, store_of(request), target, actor(request))
    return written(request, result)


T = "/api/tasks/{task_id}"
ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/tasks/submit",
        submit,
        "Submit a repository task (seed 003)",
        "tasks",
        SubmitTask,
        202,
        headers=TASK_HEADERS,
    ),
    Endpoint(
        "POST",
        "/api/tasks/",
        create,
        "Create a task",
        "tasks",
        CreateTask,
        201,
        headers=TASK_HEADERS,
    ),
    Endpoint(
        "GET",
        "/api/tasks/",
        list_tasks,
        "List and search tasks",
        "tasks",
        query=(
            "status",
            "project_id",
            "assigned_to",
            "tags",
            "priority",
            "created_after",
            "created_before",
            "search",
            "sort",
            "order",
            "page",
            "page_size",
            "limit",
            "offset",
            "cursor",
            "min_position",
        ),
    ),
    Endpoint(
        "GET", T, detail, "Read a task (as_of for its state at a moment)", "tasks", query=("as_of",)
    ),
    Endpoint("PUT", T, update, "Update a task", "tasks", UpdateTask, headers=("If-Match",)),
    Endpoint(
        "PATCH",
        T,
        update,
        "Update some fields of a task",
        "tasks",
        UpdateTask,
        headers=("If-Match",),
    ),
    Endpoint(
        "DELETE",
        T,
        delete,
        "Soft-delete a task",
        "tasks",
        DeleteTask,
        optional_body=True,
        query=("reason",),
        headers=("If-Match",),
    ),
    Endpoint("GET", T + "/status", status, "Task status (seed 003)", "tasks"),
    Endpoint(
        "GET",
        T + "/history",
        task_history,
        "The task's timeline from the event store (its events and its questions, checkpoints, "
        "experiences, usage, executions, webhook deliveries, output), or its changes",
        "tasks",
        query=("include", "after", "limit", "view"),
    ),
    Endpoint(
        "POST",
        T + "/execute",
        execute,
        "Queue an execution",
        "tasks",
        ExecuteTask,
        202,
        optional_body=True,
        headers=TASK_HEADERS,
    ),
    Endpoint(
        "POST",
        T + "/retry",
        retry,
        "Retry a failed, cancelled or timed out task",
        "tasks",
        RetryTask,
        202,
        optional_body=True,
        headers=TASK_HEADERS,
    ),
    Endpoint(
        "POST",
        T + "/cancel",
        cancel,
        "Cancel (or request cancellation of a running task)",
        "tasks",
        CancelTask,
        optional_body=True,
    ),
    Endpoint(
        "POST",
        T + "/approve",
        approve,
        "Approve work awaiting review",
        "tasks",
        ApproveWork,
        optional_body=True,
        permission=Permission.DECIDE,
    ),
    Endpoint(
        "POST",
        T + "/reject",
        reject,
        "Reject work awaiting review; queues a new attempt",
        "tasks",
        RejectWork,
        202,
        permission=Permission.DECIDE,
    ),
]
