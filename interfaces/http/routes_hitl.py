"""People in the loop over HTTP (seed 001): the unified queue, checkpoints and experiences, and
a decision on any item by its id, work awaiting review included.

Listings come from the read model (``?min_position=`` reads a write); one item and every decision
come from the aggregates. Another team's item, and for a project-scoped key another project's,
answers 404 as a missing one.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from application import hitl
from application.commands import Decide, Targeted
from application.hitl_queue import QUEUE_TYPES, unified_queue
from application.listings import narrow_items
from domain.hitl import Checkpoint, Experience, HitlItem
from domain.values import Permission
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.errors import written
from interfaces.http.inputs import Query, actor, body, call, read_after
from interfaces.http.listing import page_data
from interfaces.http.role import services_of, store_of
from projections.execution_rows import HitlQuery
from projections.rows import page_of

STATUSES = {
    "question": frozenset({"pending", "answered", "withdrawn"}),
    "checkpoint": frozenset({"pending", "approved", "rejected", "withdrawn"}),
    "experience": frozenset({"pending", "approved", "rejected"}),
}
QUEUE_LIMIT = 100


# ---- listings ----------------------------------------------------------------------------------


async def item_listing(request: Request, kind: str, task_id: str | None = None) -> Response:
    """A page of the team's items of one kind: ``status``, ``project_id``, ``task_id``, paging."""
    allowed = {"status", "page", "page_size", "limit", "offset"}
    q = Query(request, allowed if task_id else allowed | {"project_id", "task_id"})
    statuses = q.words("status", STATUSES[kind])
    page, size = q.paging()
    services = services_of(request)
    team = actor(request).team_id
    project_id, named_task = await call(
        narrow_items, services.store, team, q.text("project_id", 100), q.text("task_id", 100)
    )
    query = HitlQuery(
        kinds=(kind,),
        statuses=tuple(statuses),
        task_id=task_id or named_task,  # a task route has loaded its task already
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


async def queue(request: Request) -> Response:
    q = Query(request, {"type", "limit"})
    types = q.words("type", frozenset(QUEUE_TYPES)) or list(QUEUE_TYPES)
    limit = q.integer("limit", QUEUE_LIMIT, 1, QUEUE_LIMIT) or QUEUE_LIMIT
    await read_after(request)
    read_model = services_of(request).read_model
    data = await call(unified_queue, read_model, actor(request).team_id, types, limit)
    return ok(request, data)


# ---- one item, decisions -----------------------------------------------------------------------


async def item(request: Request) -> Response:
    Query(request, set())
    store = store_of(request)
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


def decider(approved: bool, kind: type[HitlItem] | None = None) -> Any:
    params: dict[type[HitlItem] | None, str] = {
        None: "item_id",
        Checkpoint: "checkpoint_id",
        Experience: "experience_id",
    }
    param = params[kind]

    async def decide(request: Request) -> Response:
        target = Targeted(target=request.path_params[param], command=await decision(request))
        store, by = store_of(request), actor(request)
        if kind is None:
            result = await call(hitl.decide_any, store, target, approved, by)
        else:
            result = await call(hitl.decide_item, store, target, approved, by, kind)
        return written(request, result)

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
