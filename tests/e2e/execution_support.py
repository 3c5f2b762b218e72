"""Helpers for tests that run real executions: an app with in-process workers, and waits on
conditions (a bounded loop that re-reads state; never a fixed sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from starlette.testclient import TestClient

from infrastructure.settings import Settings
from interfaces.http.app import create_app
from interfaces.services import migrate
from tests.e2e.conftest import Api, make_settings, signed_in

T = TypeVar("T")
DEADLINE_SECONDS = 30.0


def running_settings(tmp_path: Path, url: str | None, **changes: Any) -> Settings:
    base = make_settings(tmp_path, url)
    fields = {
        "workers": 2,
        "workspace_root": tmp_path / "workspaces",
        "allow_local_repositories": True,
        **changes,
    }
    return msgspec.structs.replace(base, **fields)


def running_api(settings: Settings) -> Iterator[Api]:
    migrate(settings)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield signed_in(client)


def eventually(read: Callable[[], T], accept: Callable[[T], bool], what: str) -> T:
    """Re-reads until ``accept`` holds; fails with the last value after the deadline."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    value = read()
    while not accept(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"never became {what}: {value!r}")
        time.sleep(0.02)
        value = read()
    return value


def task_of(api: Api, task_id: str) -> dict[str, Any]:
    return api.ok("GET", f"/api/tasks/{task_id}")["data"]


def wait_status(api: Api, task_id: str, *statuses: str) -> dict[str, Any]:
    return eventually(
        lambda: task_of(api, task_id),
        lambda t: t["status"] in statuses,
        f"{' or '.join(statuses)}",
    )


def scripted(api: Api, project_id: str, script: list[dict[str, Any]], **fields: Any) -> str:
    """Creates a task whose scripted agent follows ``script``; returns its id."""
    metadata = {"script": script, **fields.pop("metadata", {})}
    return api.task(project_id, metadata=metadata, **fields)["id"]


def execute(api: Api, task_id: str, **options: Any) -> dict[str, Any]:
    body = {"options": options} if options else {}
    return api.ok("POST", f"/api/tasks/{task_id}/execute", 202, json=body)["data"]


def history_types(api: Api, task_id: str) -> list[str]:
    return [e["type"] for e in api.ok("GET", f"/api/tasks/{task_id}/history")["data"]["history"]]
