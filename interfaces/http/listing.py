"""Listings served by the read model: filters, sort, pagination, search, read from the query
string; what the caller may see is decided in ``application/listings.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from application import board
from application.listings import projects_page, tasks_page
from domain.values import Priority, TaskStatus
from interfaces.http.envelope import ok
from interfaces.http.errors import BadRequestError, ReadModelBehindError
from interfaces.http.inputs import PAGING, Query, actor, call, read_after
from interfaces.http.role import services_of
from projections.cursor import MAX_CURSOR_CHARS, CursorError, decode_cursor
from projections.rows import Order, ProjectQuery, ProjectSort, TaskQuery, TaskSort

STATUSES = frozenset(s.value for s in TaskStatus)
# seed words onto canonical statuses (DESIGN.md)
STATUS_ALIASES = {
    "succeeded": "completed",
    "passed": "completed",
    "in_progress": "running",
    "backlog": "pending",
}
TASK_FILTERS = {
    "status",
    "project_id",
    "assigned_to",
    "tags",
    "priority",
    "created_after",
    "created_before",
    "search",
}
TASK_SORTS: frozenset[TaskSort] = frozenset(
    {"created_at", "updated_at", "priority", "title", "status"}
)
PROJECT_SORTS: frozenset[ProjectSort] = frozenset({"name", "created_at", "updated_at"})
ORDERS: frozenset[Order] = frozenset({"asc", "desc"})


def task_query(
    request: Request, project_id: str | None = None, also: frozenset[str] = frozenset()
) -> TaskQuery:
    allowed = PAGING | TASK_FILTERS | {"cursor"} | also
    if project_id is not None:
        allowed = allowed - {"project_id"}
    q = Query(request, allowed)
    statuses = [STATUS_ALIASES.get(s, s) for s in q.words("status")]
    wrong = [s for s in statuses if s not in STATUSES]
    if wrong:
        raise BadRequestError("status has unknown values", field="status", values=wrong)
    page, size = q.paging()
    priority = q.text("priority")
    minimum = None
    if priority:
        try:
            minimum = int(Priority.parse(int(priority) if priority.isdigit() else priority))
        except ValueError:
            raise BadRequestError(
                "priority must be low, normal, high, urgent or 1 to 4", field="priority"
            ) from None
    return TaskQuery(
        status=statuses,
        project_id=project_id or q.text("project_id", 100),
        assigned_to=q.text("assigned_to", 200),
        tags=q.words("tags"),
        priority=minimum,
        created_after=q.moment("created_after"),
        created_before=q.moment("created_before"),
        search=q.text("search"),
        page_size=size,
        **_position(q, page),
    )


def _position(q: Query, page: int) -> dict[str, Any]:
    """Sort, order and where the page starts: a page number, or a cursor (which carries the sort
    and order it was issued under; naming others with it is refused)."""
    sort = q.choice("sort", "created_at", TASK_SORTS)
    order = q.choice("order", "desc", ORDERS)
    text = q.text("cursor", MAX_CURSOR_CHARS)
    if text is None:
        return {"sort": sort, "order": order, "page": page}
    if q.params.get("page") or q.params.get("offset"):
        raise BadRequestError("give cursor or page (offset), not both", field="cursor")
    try:
        issued_sort, issued_order, after = decode_cursor(text)
    except CursorError as e:
        raise BadRequestError(str(e), field="cursor") from None
    given = {"sort": q.params.get("sort") or issued_sort, "order": q.params.get("order")}
    if given["sort"] != issued_sort or (given["order"] or issued_order) != issued_order:
        raise BadRequestError(
            f"cursor was issued for sort={issued_sort} and order={issued_order}",
            field="cursor",
        )
    return {"sort": issued_sort, "order": issued_order, "after": after}


def page_data(page: Any) -> dict[str, Any]:
    return msgspec.to_builtins(page)


async def list_tasks(request: Request) -> Response:
    return await _tasks_page(request, task_query(request))


async def list_project_tasks(request: Request) -> Response:
    at = Query(request, PAGING | TASK_FILTERS | {"as_of", "cursor"}).as_of()
    if at is not None:
        if "cursor" in request.query_params:
            raise BadRequestError("as_of pages by page number, not cursor", field="cursor")
        return await _board_as_of(request, at)
    return await _tasks_page(request, task_query(request, request.path_params["project_id"]))


async def _board_as_of(request: Request, at: int | datetime) -> Response:
    """``?as_of=``: the project's tasks replayed from the store (``application/board.py``),
    once the read model knows every task alive then (``?min_position=`` waits as well)."""
    ref = request.path_params["project_id"]
    query = task_query(request, ref, also=frozenset({"as_of"}))
    await read_after(request)
    services = services_of(request)
    now = await call(services.store.max_position)
    wanted = min(at, now) if isinstance(at, int) else now
    timeout = request.app.state.settings.read_wait_seconds
    if not await call(services.runner.wait_for, wanted, timeout):
        raise ReadModelBehindError(wanted, services.runner.position)
    data = await call(
        board.project_tasks_as_of,
        services.store,
        services.read_model,
        ref,
        actor(request).team_id,
        at,
        query,
    )
    return ok(request, data)


async def _tasks_page(request: Request, query: TaskQuery) -> Response:
    await read_after(request)
    services = services_of(request)
    team_id = actor(request).team_id
    page = await call(tasks_page, services.store, services.read_model, team_id, query)
    return ok(request, msgspec.structs.asdict(page))  # shallow: the items stay stored JSON


async def list_projects(request: Request) -> Response:
    q = Query(request, PAGING | {"status", "created_by", "search"})
    page, size = q.paging()
    query = ProjectQuery(
        status=q.words("status", frozenset({"active", "archived", "completed"})),
        created_by=q.text("created_by", 200),
        search=q.text("search"),
        sort=q.choice("sort", "created_at", PROJECT_SORTS),
        order=q.choice("order", "desc", ORDERS),
        page=page,
        page_size=size,
    )
    await read_after(request)
    services = services_of(request)
    result = await call(
        projects_page, services.store, services.read_model, actor(request).team_id, query
    )
    return ok(request, page_data(result))
