"""Clients updating one task at once over HTTP, on SQLite and on Postgres.

Issue 10 (D10): four clients without ``If-Match`` saw a fifth of their updates refused with 409
``VERSION_CONFLICT``. Without ``If-Match`` no check was asked for: every update lands.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from starlette.testclient import TestClient

from infrastructure.settings import Settings
from interfaces.http.app import create_app
from interfaces.services import migrate
from tests.e2e.conftest import Api, make_settings, signed_in

CLIENTS = 4
UPDATES_EACH = 25


@pytest.fixture
def api(tmp_path: Path, database_url: str | None) -> Iterator[Api]:
    # the bound itself is tested with a fake clock (tests/unit/test_conflict_retry.py): a slow,
    # shared machine must not make this test about it
    settings: Settings = msgspec.structs.replace(
        make_settings(tmp_path, database_url), conflict_retry_seconds=60.0
    )
    migrate(settings)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield signed_in(client)


def test_concurrent_patches_without_if_match_all_answer_200_and_all_land(api):
    task = api.task(api.project()["id"])
    path = f"/api/tasks/{task['id']}"
    statuses: list[int] = []
    start = threading.Barrier(CLIENTS)

    def client(n: int) -> None:
        start.wait()
        for i in range(UPDATES_EACH):
            response = api.patch(path, json={"title": f"client {n} update {i}"})
            statuses.append(response.status_code)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert statuses == [200] * CLIENTS * UPDATES_EACH
    final = api.get(path)
    assert final.headers["etag"] == f'"{1 + CLIENTS * UPDATES_EACH}"'
    history = api.ok("GET", f"{path}/history", params={"limit": "1000"})["data"]["history"]
    titles = {e["data"]["changes"]["title"] for e in history if e["type"] == "task.updated"}
    wanted = {f"client {n} update {i}" for n in range(CLIENTS) for i in range(UPDATES_EACH)}
    assert titles == wanted


def test_concurrent_patches_at_one_if_match_version_answer_one_200_and_409s(api):
    task = api.task(api.project()["id"])
    path = f"/api/tasks/{task['id']}"
    statuses: list[int] = []
    codes: list[str] = []
    start = threading.Barrier(CLIENTS)

    def client(n: int) -> None:
        start.wait()
        response = api.patch(path, json={"title": f"client {n}"}, headers={"If-Match": '"1"'})
        statuses.append(response.status_code)
        if response.status_code != 200:
            codes.append(response.json()["error"]["code"])

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(statuses) == [200] + [409] * (CLIENTS - 1)
    assert codes == ["VERSION_CONFLICT"] * (CLIENTS - 1)
    assert api.get(path).headers["etag"] == '"2"'
