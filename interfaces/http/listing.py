"""Listings served by the read model: filters, sort, pagination, search.

A key scoped to one project lists that project only: its task listing is forced to the project
(naming another project answers 404, as a missing one does), and its project listing is built
from the one project (the read model has no id filter), with the status and creator filters.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from application.errors import NotFoundError
from application.representations import project_data
from domain.project import Project
from domain.values import Priority, TaskStatus
from interfaces.http.envelope import ok
from interfaces.http.errors import BadRequestError
from interfaces.http.inputs import PAGING, Query, actor, call, read_after
from projections.rows import (
    Order,
    ProjectQuery,
    ProjectRow,
    ProjectSort,
    TaskQuery,
    TaskSort,
    page_of,
)

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


def task_query(request: Request, project_id: str | None = None) -> TaskQuery:
    allowed = PAGING | TASK_FILTERS
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
        sort=q.choice("sort", "created_at", TASK_SORTS),
        order=q.choice("order", "desc", ORDERS),
        page=page,
        page_size=size,
    )


def page_data(page: Any) -> dict[str, Any]:
    return msgspec.to_builtins(page)


async def list_tasks(request: Request) -> Response:
    query = task_query(request)
    scope = request.state.principal.project_id
    if scope is not None and not query.project_id:
        query = msgspec.structs.replace(query, project_id=scope)
    if query.project_id:  # under a project scope, any other project is not found
        store = request.app.state.services.store
        project = await call(
            store.load_live, Project, query.project_id, actor(request).team_id, "project"
        )
        query = msgspec.structs.replace(query, project_id=str(project.id))
    return await _tasks_page(request, query)


async def list_project_tasks(request: Request) -> Response:
    store = request.app.state.services.store
    project = await call(
        store.load_live,
        Project,
        request.path_params["project_id"],
        actor(request).team_id,
        "project",
    )
    return await _tasks_page(request, task_query(request, str(project.id)))


async def _tasks_page(request: Request, query: TaskQuery) -> Response:
    await read_after(request)
    read_model = request.app.state.services.read_model
    page = await call(read_model.list_tasks, actor(request).team_id, query)
    return ok(request, page_data(page))


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
    if request.state.principal.project_id is not None:
        return ok(request, page_data(await _scoped_projects(request, query)))
    read_model = request.app.state.services.read_model
    result = await call(read_model.list_projects, actor(request).team_id, query)
    return ok(request, page_data(result))


async def _scoped_projects(request: Request, query: ProjectQuery) -> Any:
    """The one project of a project-scoped key, as a page of at most one row."""
    if query.search:
        raise BadRequestError("a project-scoped key lists one project: no search", field="search")
    services = request.app.state.services
    by = actor(request)
    project_id = request.state.principal.project_id
    try:
        project = await call(services.store.load_live, Project, project_id, by.team_id, "project")
    except NotFoundError:  # the key's project was deleted: nothing left to list
        return page_of([], 0, query.page, query.page_size)
    matches = (not query.status or project.status in query.status) and (
        query.created_by is None or project.created_by == query.created_by
    )
    if not matches or query.page > 1:
        return page_of([], int(matches), query.page, query.page_size)
    stats = await call(services.read_model.project_statistics, by.team_id, project_id)
    row = ProjectRow(**project_data(project), team_id=by.team_id, statistics=stats)
    return page_of([row], 1, query.page, query.page_size)
