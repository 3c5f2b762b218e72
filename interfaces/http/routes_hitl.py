"""People in the loop over HTTP (seed 001): the unified queue, checkpoints and experiences, and
a decision on any item by its id, work awaiting review included.

Listings come from the read model (``?min_position=`` reads a write); one item and every decision
come from the aggregates. Another team's item, and for a project-scoped key another project's,
answers 404 as a missing one.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response

from application import executions, hitl
from application.commands import ApproveWork, Decide, RejectWork
from application.errors import NotFoundError
from application.idempotency import Written
from application.store import Store
from domain.hitl import Checkpoint, Experience, HitlItem
from domain.project import Project
from domain.task import Task
from domain.values import Actor, Permission
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.inputs import Query, actor, body, call, read_after
from interfaces.http.listing import page_data
from projections.execution_rows import HitlQuery
from projections.read_model import ReadModel
from projections.rows import TaskQuery, page_of

STATUSES = {
    "question": frozenset({"pending", "answered", "withdrawn"}),
    "checkpoint": frozenset({"pending", "approved", "rejected", "withdrawn"}),
    "experience": frozenset({"pending", "approved", "rejected"}),
}
HITL_KINDS = ("question", "checkpoint", "experience")
QUEUE_TYPES = (*HITL_KINDS, "review")
QUEUE_LIMIT = 100
REVIEW_PAGE = 100
DEFAULT_REJECTION = "rejected"


# ---- listings ----------------------------------------------------------------------------------


def _scope(request: Request) -> str | None:
    project_id: str | None = request.state.principal.project_id
    return project_id


async def item_listing(request: Request, kind: str, task_id: str | None = None) -> Response:
    """A page of the team's items of one kind: ``status``, ``project_id``, ``task_id``, paging."""
    allowed = {"status", "page", "page_size", "limit", "offset"}
    q = Query(request, allowed if task_id else allowed | {"project_id", "task_id"})
    statuses = q.words("status", STATUSES[kind])
    page, size = q.paging()
    services = request.app.state.services
    team = actor(request).team_id
    project_id = _scope(request)
    named_project = q.text("project_id", 100)
    if named_project:  # under a project scope, any other project is not found
        project = await call(services.store.load_live, Project, named_project, team, "project")
        project_id = str(project.id)
    task_ref = task_id  # a task route has loaded its task already
    named_task = q.text("task_id", 100)
    if named_task:
        task = await call(services.store.load_live, Task, named_task, team, "task")
        task_ref = str(task.id)
    query = HitlQuery(
        kinds=(kind,),
        statuses=tuple(statuses),
        task_id=task_ref,
        limit=size,
        offset=(page - 1) * size,
    )
    await read_after(request)
    rows, total = await call(hitl.hitl_page, services.read_model, team, query, project_id)
    return ok(request, page_data(page_of([hitl.row_data(r) for r in rows], total, page, size)))


async def list_checkpoints(request: Request) -> Response:
    return await item_listing(request, "checkpoint")


async def list_experiences(request: Request) -> Response:
    return await item_listing(request, "experience")


# ---- the unified queue -------------------------------------------------------------------------


def review_data(row: Any) -> dict[str, Any]:
    """Finished work waiting for a person (seed 002's ready_to_test), as a queue entry."""
    return {
        "type": "review",
        "id": row.id,
        "task_id": row.id,
        "project_id": row.project_id,
        "slug": row.slug,
        "title": row.title,
        "status": "pending",
        "created_at": row.updated_at,  # the task's last change: when its work entered review
        "result": row.result,
    }


def reviews(
    read_model: ReadModel, team_id: str, project_id: str | None, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Tasks awaiting approval with no agent waiting (no execution in flight: one waiting on a
    checkpoint is listed as the checkpoint), newest first, and how many there are."""
    in_flight = {r.task_id for r in read_model.in_flight(team_id)}
    found: list[dict[str, Any]] = []
    total, page = 0, 1
    while True:
        query = TaskQuery(
            status=["awaiting_approval"],
            project_id=project_id,
            sort="updated_at",
            order="desc",
            page=page,
            page_size=REVIEW_PAGE,
        )
        result = read_model.list_tasks(team_id, query)
        for row in result.items:
            if row.id not in in_flight:
                total += 1
                if len(found) < limit:
                    found.append(review_data(row))
        if not result.has_next:
            return found, total
        page += 1


def unified_queue(
    read_model: ReadModel, team_id: str, project_id: str | None, types: list[str], limit: int
) -> dict[str, Any]:
    """Every pending item and review (each kind up to ``limit``) of the selected types, newest
    first; the counts are of everything pending, whatever the types."""
    pending: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for kind in HITL_KINDS:
        shown = limit if kind in types else 0
        query = HitlQuery(kinds=(kind,), statuses=("pending",), limit=shown)
        rows, counts[f"{kind}s"] = hitl.hitl_page(read_model, team_id, query, project_id)
        pending += [hitl.row_data(r) for r in rows]
    found, counts["reviews"] = reviews(
        read_model, team_id, project_id, limit if "review" in types else 0
    )
    pending += found
    pending.sort(key=lambda entry: entry["created_at"], reverse=True)
    return {"pending": pending, "counts": counts}


async def queue(request: Request) -> Response:
    q = Query(request, {"type", "limit"})
    types = q.words("type", frozenset(QUEUE_TYPES)) or list(QUEUE_TYPES)
    limit = q.integer("limit", QUEUE_LIMIT, 1, QUEUE_LIMIT) or QUEUE_LIMIT
    await read_after(request)
    read_model = request.app.state.services.read_model
    data = await call(
        unified_queue, read_model, actor(request).team_id, _scope(request), types, limit
    )
    return ok(request, data)


# ---- one item, decisions -----------------------------------------------------------------------


async def item(request: Request) -> Response:
    Query(request, set())
    store = request.app.state.services.store
    found = await call(hitl.load_visible, store, request.path_params["item_id"], actor(request))
    return ok(request, hitl.item_view(found))


async def decision(request: Request) -> Decide:
    """The reason from the body (``Decide``) or from ``?reason=`` (seed 001)."""
    q = Query(request, {"reason"})
    cmd = await body(request, Decide, optional=True)
    reason = q.text("reason", 2000)
    if cmd.reason is None and reason:
        return Decide(reason=reason)
    return cmd


def decide_kind(
    store: Store, item_id: str, approved: bool, cmd: Decide, by: Actor, kind: type[HitlItem]
) -> Written:
    hitl.load_visible(store, item_id, by, kind)  # another project's: not found, for a scoped key
    return hitl.decide_item(store, item_id, approved, cmd, by, kind)


def decide_review(store: Store, item_id: str, approved: bool, cmd: Decide, by: Actor) -> Written:
    """Work awaiting review, by its task's id: approve it, or reject it (a new attempt)."""
    try:
        task = store.load_live(Task, str(UUID(item_id)), by.team_id, "item")
    except ValueError:
        raise NotFoundError("item", item_id) from None
    ref = str(task.id)
    if approved:
        result = executions.approve_work(store, ref, ApproveWork(comment=cmd.reason), by)
    else:
        reason = cmd.reason or DEFAULT_REJECTION
        result = executions.reject_work(store, ref, RejectWork(reason=reason), by)
    data = {
        "type": "review",
        "id": ref,
        "task_id": ref,
        "project_id": task.project_id,
        "status": "approved" if approved else "rejected",
        "reason": cmd.reason if approved else cmd.reason or DEFAULT_REJECTION,
        "decided_by": by.id,
        "task_status": result.data["status"],
    }
    return Written(data=data, position=result.position)


def decide_any(store: Store, item_id: str, approved: bool, cmd: Decide, by: Actor) -> Written:
    """A checkpoint or an experience by its id, else work awaiting review by its task's id; a
    question is answered, not decided (422)."""
    try:
        hitl.load_visible(store, item_id, by)
    except NotFoundError:
        return decide_review(store, item_id, approved, cmd, by)
    return hitl.decide_item(store, item_id, approved, cmd, by, HitlItem)


def _answer(request: Request, result: Written) -> Response:
    headers = {"X-Position": str(result.position)}
    return ok(request, result.data, 200, result.position, headers)


def decider(approved: bool, kind: type[HitlItem] | None = None) -> Any:
    params: dict[type[HitlItem] | None, str] = {
        None: "item_id",
        Checkpoint: "checkpoint_id",
        Experience: "experience_id",
    }
    param = params[kind]

    async def decide(request: Request) -> Response:
        cmd = await decision(request)
        store = request.app.state.services.store
        ref, by = request.path_params[param], actor(request)
        if kind is None:
            result = await call(decide_any, store, ref, approved, cmd, by)
        else:
            result = await call(decide_kind, store, ref, approved, cmd, by, kind)
        return _answer(request, result)

    return decide


ITEM_QUERY = (
    "status",
    "project_id",
    "task_id",
    "page",
    "page_size",
    "limit",
    "offset",
    "min_position",
)
H = "/api/hitl/{item_id}"
C = "/api/checkpoints/{checkpoint_id}"
E = "/api/experiences/{experience_id}"


def _decisions(path: str, what: str, kind: type[HitlItem] | None) -> list[Endpoint]:
    return [
        Endpoint(
            "POST",
            f"{path}/{verb}",
            decider(verb == "approve", kind),
            f"{verb.capitalize()} {what}",
            "hitl",
            Decide,
            optional_body=True,
            query=("reason",),
            permission=Permission.DECIDE,
        )
        for verb in ("approve", "reject")
    ]


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/hitl/queue",
        queue,
        "Everything waiting for a person: questions, checkpoints, experiences, reviews (seed 001)",
        "hitl",
        query=("type", "limit", "min_position"),
    ),
    Endpoint("GET", H, item, "One question, checkpoint or experience", "hitl"),
    *_decisions(H, "a checkpoint, an experience or work awaiting review", None),
    Endpoint(
        "GET",
        "/api/checkpoints",
        list_checkpoints,
        "The team's checkpoints (seed 001)",
        "hitl",
        query=ITEM_QUERY,
    ),
    *_decisions(C, "a checkpoint (the agent waiting on it runs on)", Checkpoint),
    Endpoint(
        "GET",
        "/api/experiences",
        list_experiences,
        "The experiences agents proposed (seed 001)",
        "hitl",
        query=ITEM_QUERY,
    ),
    *_decisions(E, "a proposed experience", Experience),
]
