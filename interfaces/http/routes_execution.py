"""A task's execution over HTTP: its output, its phases, its questions and their answers (seed
002), and seed 001's job aliases, which address tasks by slug or id.

The task is loaded team- and project-scoped first, so another team's task answers 404 as a missing
one before the read model is asked anything.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from application import executions, hitl
from application.commands import CancelTask, Respond, Targeted
from application.representations import task_data
from application.results import Cancellation
from domain.task import Task
from domain.values import Permission, TaskStatus, rfc3339
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.errors import written
from interfaces.http.inputs import Query, actor, body, call, read_after
from interfaces.http.listing import list_tasks
from interfaces.http.role import services_of, store_of
from interfaces.http.routes_hitl import item_listing

OUTPUT_LIMIT = 200
MAX_OUTPUT_LIMIT = 1000
# seed 001's phase words: what the agent reported (started, completed, failed, skipped)
PHASE_WORDS = {"started": "running", "completed": "passed"}
# a phase still started when its execution ended took the execution's end
ENDED_PHASE = {
    TaskStatus.COMPLETED.value: "passed",
    TaskStatus.FAILED.value: "failed",
    TaskStatus.TIMED_OUT.value: "failed",
    TaskStatus.CANCELLED.value: "cancelled",
}
WAITING = frozenset({TaskStatus.PENDING.value, TaskStatus.QUEUED.value})


def _ref(request: Request) -> str:
    params = request.path_params
    ref: str = params["task_id"] if "task_id" in params else params["slug"]
    return ref


async def _task(request: Request) -> Task:
    store = store_of(request)
    task: Task = await call(store.load_live, Task, _ref(request), actor(request).team_id, "task")
    return task


# ---- answers -----------------------------------------------------------------------------------


async def respond(request: Request) -> Response:
    """Seed 002: answer the question the agent asked; the task runs on in the same write."""
    cmd = Targeted(target=_ref(request), command=await body(request, Respond))
    store = store_of(request)
    return written(request, await call(hitl.respond, store, cmd, actor(request)))


async def questions(request: Request) -> Response:
    task = await _task(request)
    return await item_listing(request, "question", str(task.id))


# ---- output ------------------------------------------------------------------------------------


async def output(request: Request) -> Response:
    """The agent's output after log position ``after``, in order; pass ``next_after`` back."""
    q = Query(request, {"after", "limit"})
    after = q.integer("after", 0, 0, 2**62) or 0
    limit = q.integer("limit", OUTPUT_LIMIT, 1, MAX_OUTPUT_LIMIT) or OUTPUT_LIMIT
    task = await _task(request)
    await read_after(request)
    read_model = services_of(request).read_model
    team = actor(request).team_id
    rows = await call(read_model.output, team, str(task.id), after, limit + 1)
    shown = rows[:limit]
    items = [
        {
            "position": r.position,
            "execution_id": r.execution_id,
            "seq": r.seq,
            "stream": r.stream,
            "text": r.text,
            "timestamp": r.timestamp,
        }
        for r in shown
    ]
    data = {
        "task_id": str(task.id),
        "items": items,
        "next_after": shown[-1].position if shown else after,
        "has_more": len(rows) > limit,
    }
    return ok(request, data)


# ---- phases ------------------------------------------------------------------------------------


def phase_status(reported: str, task: Task) -> str:
    """Seed 001's word for a phase: pending, running, passed, failed, skipped or cancelled."""
    if reported != "started":
        return PHASE_WORDS.get(reported, reported)
    if task.status in WAITING:  # the phases of the last attempt, before the next one starts
        return "pending"
    if task.status == TaskStatus.AWAITING_APPROVAL.value and task.worker_id is None:
        return "passed"  # the work is finished and waits for review: no agent is left
    return ENDED_PHASE.get(task.status, "running")


def phases_data(task: Task) -> dict[str, Any]:
    listed = [
        {
            "phase": p["name"],
            "status": phase_status(p["status"], task),
            "reported_status": p["status"],
            "started_at": rfc3339(p["started_at"]),
            "finished_at": rfc3339(p["finished_at"]),
        }
        for p in task.phases
    ]
    return {
        "task_id": str(task.id),
        "slug": task.slug,
        "status": task.status,
        "execution_id": task.execution_id,
        "attempt": task.attempt,
        "phases": listed,
        "map": {p["phase"]: p["status"] for p in listed},
    }


async def phases(request: Request) -> Response:
    Query(request, set())
    return ok(request, phases_data(await _task(request)))


# ---- seed 001's jobs ---------------------------------------------------------------------------


async def job(request: Request) -> Response:
    Query(request, set())
    task = await _task(request)
    return ok(request, task_data(task), headers={"ETag": f'"{task.version}"'})


def job_cancellation(result: Cancellation) -> dict[str, Any]:
    """Seed 001's shape of a task's cancel: what happened is in ``status``, not in the answer's
    status (200 either way)."""
    task, requested = result.task, not result.now
    return {
        "slug": task["slug"] or task["id"],
        "task_id": task["id"],
        "status": "cancel_requested" if requested else "cancelled",
        "cancel_requested": requested,
        "task_status": task["status"],
    }


async def cancel(request: Request) -> Response:
    """The task's own cancel underneath (409 once the job has ended)."""
    cmd = Targeted(target=_ref(request), command=await body(request, CancelTask, optional=True))
    store = store_of(request)
    result = await call(executions.cancel_task, store, cmd, actor(request))
    position = result.position
    headers = {"X-Position": str(position)}
    return ok(request, job_cancellation(result), position=position, headers=headers)


TASK_LIST_QUERY = (
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
)
T = "/api/tasks/{task_id}"
J = "/api/jobs/{slug}"
ENDPOINTS = [
    Endpoint(
        "POST",
        T + "/respond",
        respond,
        "Answer the question the agent asked; the task runs on (seed 002)",
        "hitl",
        Respond,
        permission=Permission.DECIDE,
    ),
    Endpoint(
        "GET",
        T + "/questions",
        questions,
        "The questions the task's agents asked (seed 002)",
        "hitl",
        query=("status", "page", "page_size", "limit", "offset", "min_position"),
    ),
    Endpoint(
        "GET",
        T + "/output",
        output,
        "The agent's output, in order, after a log position",
        "execution",
        query=("after", "limit", "min_position"),
    ),
    Endpoint("GET", T + "/phases", phases, "The phases the agent reported", "execution"),
    Endpoint(
        "GET",
        "/api/jobs",
        list_tasks,
        "The team's jobs: tasks (seed 001)",
        "jobs",
        query=TASK_LIST_QUERY,
    ),
    Endpoint("GET", J, job, "A job: a task by slug or id (seed 001)", "jobs"),
    Endpoint("GET", J + "/phases", phases, "A job's phases (seed 001)", "jobs"),
    Endpoint(
        "POST",
        J + "/cancel",
        cancel,
        "Cancel a job, or ask its agent to stop (seed 001)",
        "jobs",
        CancelTask,
        optional_body=True,
    ),
]
