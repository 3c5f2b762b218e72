"""A task's workspace over HTTP: its tree, one file, a zip; seed 001's job aliases by slug.

The task is loaded team-scoped (and project-scoped for a scoped key) before anything else looks
at the request, so another team's task answers 404 as a missing one, whatever the ``path``.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from application.store import Store
from domain.task import Task
from infrastructure import artifacts
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.errors import BadRequestError
from interfaces.http.inputs import Query, actor, call
from interfaces.http.role import services_of

MAX_ENTRIES = 10_000
MAX_DEPTH = 64
ZIP_LIMIT = artifacts.MAX_ZIP_BYTES  # 200 MiB of file content


def _locate(store: Store, workspaces: Path, ref: str, team_id: str) -> tuple[Task, Path]:
    task = store.load_live(Task, ref, team_id, "task")
    return task, artifacts.workspace_of(workspaces, str(task.id), task.execution_id)


async def _workspace(request: Request) -> tuple[Task, Path]:
    params = request.path_params
    ref = params["task_id"] if "task_id" in params else params["slug"]
    services = services_of(request)
    team = actor(request).team_id
    return await call(_locate, services.store, services.settings.workspaces, ref, team)


async def tree(request: Request) -> Response:
    query = Query(request, {"max_entries", "max_depth"})
    max_entries = query.integer("max_entries", 5000, 1, MAX_ENTRIES) or 5000
    max_depth = query.integer("max_depth", 32, 1, MAX_DEPTH) or 32
    task, root = await _workspace(request)
    listing = await call(artifacts.tree, root, max_entries, max_depth)
    data = {
        "task_id": str(task.id),
        "execution_id": task.execution_id,
        "root": "",
        "entries": listing.entries,
        "truncated": listing.truncated,
    }
    return ok(request, data)


async def file(request: Request) -> Response:
    query = Query(request, {"path"})
    _, root = await _workspace(request)  # first: another team's task is not found, any path
    path = query.params.get("path")
    if path is None:
        raise BadRequestError("path is required", field="path")
    return ok(request, await call(artifacts.read_file, root, path))


async def download(request: Request) -> Response:
    Query(request, set())
    task, root = await _workspace(request)
    chunks = await call(artifacts.zip_stream, root, limit=ZIP_LIMIT)  # over the cap: 422 here
    name = task.slug or str(task.id)
    headers = {"Content-Disposition": f'attachment; filename="{name}.zip"'}
    return StreamingResponse(chunks, media_type="application/zip", headers=headers)


ZIP = {"type": "string", "format": "binary"}
T = "/api/tasks/{task_id}/workspace"
J = "/api/jobs/{slug}"
ENDPOINTS = [
    Endpoint(
        "GET",
        T + "/tree",
        tree,
        "The files and directories of the task's workspace",
        "artifacts",
        query=("max_entries", "max_depth"),
    ),
    Endpoint(
        "GET",
        T + "/file",
        file,
        "One file of the task's workspace (at most 500 KB)",
        "artifacts",
        query=("path",),
    ),
    Endpoint(
        "GET",
        T + "/download",
        download,
        "The task's workspace as a zip",
        "artifacts",
        media_type="application/zip",
        response=ZIP,
    ),
    Endpoint(
        "GET",
        J + "/code/tree",
        tree,
        "The files of a job's workspace (seed 001)",
        "artifacts",
        query=("max_entries", "max_depth"),
    ),
    Endpoint(
        "GET",
        J + "/code/file",
        file,
        "One file of a job's workspace (seed 001)",
        "artifacts",
        query=("path",),
    ),
    Endpoint(
        "GET",
        J + "/download",
        download,
        "A job's workspace as a zip (seed 001)",
        "artifacts",
        media_type="application/zip",
        response=ZIP,
    ),
]
