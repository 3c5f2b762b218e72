"""Postgres stops and starts again under a running API: the API answers 503 in the envelope while
it is down, and serves again as soon as it is back.

The server is a private one (the fault suite's ``PrivatePostgres``), never the shared one. How fast
the 503 comes is a figure in docs/performance.md ("Postgres outage"), printed here, not asserted.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from starlette.testclient import TestClient

from interfaces.http.app import create_app
from interfaces.services import migrate
from tests.e2e.conftest import Api, make_settings, signed_in
from tests.faults.private_postgres import PrivatePostgres

pytestmark = pytest.mark.slow  # servers and processes: make slow (CI runs it)


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    root = Path(tempfile.mkdtemp(prefix="tw-outage-"))
    server = PrivatePostgres(root)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def api(postgres: PrivatePostgres, tmp_path: Path) -> Iterator[Api]:
    with psycopg.connect(postgres.admin_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE outage")
    url = postgres.admin_url.rsplit("/", 1)[0] + "/outage"
    settings = msgspec.structs.replace(make_settings(tmp_path, url), database_timeout_seconds=2.0)
    migrate(settings)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield signed_in(client)


def timed(label: str, send: Any) -> Any:
    started = time.monotonic()
    response = send()
    print(f"{label}: {response.status_code} in {time.monotonic() - started:.2f} s")
    return response


def assert_database_down(response: Any) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["data"] is None
    assert body["error"]["code"] == "DATABASE_ERROR"
    assert body["meta"]["request_id"]
    assert response.headers["retry-after"]


def test_while_postgres_is_down_writes_and_reads_answer_503_and_after_it_is_back_they_succeed(
    postgres: PrivatePostgres, api: Api
) -> None:
    project = api.project()
    task = api.task(project["id"])
    path = f"/api/tasks/{task['id']}"

    postgres.stop()
    try:
        assert_database_down(timed("write", lambda: api.patch(path, json={"title": "Down"})))
        assert_database_down(timed("read", lambda: api.get(path)))
        assert_database_down(timed("list", lambda: api.get("/api/tasks/")))
        create = {"title": "Lost", "project_id": project["id"]}
        assert_database_down(timed("create", lambda: api.post("/api/tasks/", json=create)))
    finally:
        postgres.start()

    written = timed("write after restart", lambda: api.patch(path, json={"title": "Back"}))
    assert written.status_code == 200, written.text
    assert written.headers["etag"] == '"2"'  # nothing was written while the server was down
    read = api.ok("GET", path)["data"]
    assert read["title"] == "Back"
    created = api.ok("POST", "/api/tasks/", 201, json=create)["data"]
    assert created["title"] == "Lost"
