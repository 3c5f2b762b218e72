"""Project endpoints: CRUD, tasks of a project, clone."""

from __future__ import annotations

from typing import TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from application import projects
from application.commands import CloneProject, CreateProject, DeleteProject, Targeted, UpdateProject
from application.representations import project_data
from domain.project import Project
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.errors import ReadModelBehindError, written
from interfaces.http.inputs import (
    Query,
    actor,
    body,
    call,
    expected_version,
    idempotency,
    read_after,
)
from interfaces.http.listing import list_project_tasks, list_projects
from interfaces.http.role import services_of, store_of

C = TypeVar("C")


async def create(request: Request) -> Response:
    cmd = await body(request, CreateProject)
    store = store_of(request)
    result = await call(
        projects.create_project, store, cmd, actor(request), idempotency(request, cmd)
    )
    return written(request, result)


async def detail(request: Request) -> Response:
    Query(request, set())
    services = services_of(request)
    team = actor(request).team_id
    project = await call(
        services.store.load_live, Project, request.path_params["project_id"], team, "project"
    )
    await read_after(request)
    stats = await call(services.read_model.project_statistics, team, str(project.id))
    activity = await call(services.read_model.recent_activity, team, str(project.id), 20)
    data = project_data(project)
    data["statistics"] = msgspec.to_builtins(stats)
    data["recent_activity"] = msgspec.to_builtins(activity)
    return ok(request, data, headers={"ETag": f'"{project.version}"'})


def _targeted(request: Request, command: C) -> Targeted[C]:
    """The command to the project of the path, at the version of ``If-Match`` if given."""
    return Targeted(
        target=request.path_params["project_id"],
        command=command,
        expected_version=expected_version(request),
    )


async def update(request: Request) -> Response:
    cmd = _targeted(request, await body(request, UpdateProject))
    store = store_of(request)
    return written(request, await call(projects.update_project, store, cmd, actor(request)))


async def delete(request: Request) -> Response:
    Query(request, set())
    cmd = _targeted(request, DeleteProject())
    store = store_of(request)
    return written(request, await call(projects.delete_project, store, cmd, actor(request)))


async def clone(request: Request) -> Response:
    cmd = await body(request, CloneProject)
    services = services_of(request)
    by = actor(request)
    source = await call(
        services.store.load_live, Project, request.path_params["project_id"], by.team_id, "project"
    )
    task_ids: list[str] = []
    if cmd.include_tasks:
        # the listing names the tasks to copy; make sure it has seen everything written so far
        head = await call(services.store.max_position)
        if not await call(services.runner.wait_for, head, services.settings.read_wait_seconds):
            raise ReadModelBehindError(head, services.runner.position)
        task_ids = await call(services.read_model.task_ids_of_project, by.team_id, str(source.id))
    clone = Targeted(target=str(source.id), command=cmd)
    result = await call(projects.clone_project, services.store, clone, by, task_ids)
    return written(request, result)


P = "/api/projects/{project_id}"
ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/projects/",
        create,
        "Create a project",
        "projects",
        CreateProject,
        201,
        headers=("Idempotency-Key",),
    ),
    Endpoint(
        "GET",
        "/api/projects/",
        list_projects,
        "List and search projects",
        "projects",
        query=(
            "status",
            "created_by",
            "search",
            "sort",
            "order",
            "page",
            "page_size",
            "limit",
            "offset",
            "min_position",
        ),
    ),
    Endpoint(
        "GET",
        P,
        detail,
        "Read a project with statistics and recent activity",
        "projects",
        query=("min_position",),
    ),
    Endpoint(
        "PUT", P, update, "Update a project", "projects", UpdateProject, headers=("If-Match",)
    ),
    Endpoint(
        "PATCH",
        P,
        update,
        "Update some fields of a project",
        "projects",
        UpdateProject,
        headers=("If-Match",),
    ),
    Endpoint("DELETE", P, delete, "Soft-delete a project", "projects", headers=("If-Match",)),
    Endpoint(
        "GET",
        P + "/tasks",
        list_project_tasks,
        "List the tasks of a project",
        "projects",
        query=(
            "status",
            "assigned_to",
            "tags",
            "priority",
            "search",
            "sort",
            "order",
            "page",
            "page_size",
            "cursor",
            "min_position",
            "as_of",
        ),
    ),
    Endpoint(
        "POST",
        P + "/clone",
        clone,
        "Clone a project, with or without its tasks and settings",
        "projects",
        CloneProject,
        201,
    ),
]
