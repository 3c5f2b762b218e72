"""The whole app on the in-memory twin of the event store (TASKWARDEN_MEMORY_STORE): what the
handler tests rely on holds for the app too, and no event reaches the data directory."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from starlette.testclient import TestClient

from infrastructure.event_store import EVENTS_FILE
from infrastructure.settings import Settings
from interfaces.http.app import create_app
from interfaces.services import migrate
from tests.e2e.conftest import make_settings, signed_in


def test_the_environment_chooses_the_memory_store_and_it_goes_with_no_database() -> None:
    chosen = Settings.from_env({"TASKWARDEN_MEMORY_STORE": "1"})
    assert chosen.event_store == "memory"
    assert Settings.from_env({}).event_store == "sqlite"
    with pytest.raises(ValueError, match="MEMORY_STORE"):
        Settings(memory_store=True, database_url="postgresql://localhost/tw")


def test_the_app_on_the_memory_store_writes_reads_and_answers_ready(tmp_path: Path) -> None:
    settings = msgspec.structs.replace(make_settings(tmp_path, None), memory_store=True)
    migrate(settings)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        api = signed_in(client)
        project = api.project()
        task = api.task(project["id"], title="Kept in memory")
        position = api.position()
        api.ok("PATCH", f"/api/tasks/{task['id']}", json={"title": "Renamed"})
        assert api.position() > position
        history = api.ok("GET", f"/api/tasks/{task['id']}/history")["data"]["history"]
        assert [e["type"] for e in history] == ["task.created", "task.updated"]
        assert [e["position"] for e in history] == sorted({e["position"] for e in history})
        listed = api.ok("GET", f"/api/tasks/?min_position={api.position()}")["data"]["items"]
        assert [t["title"] for t in listed] == ["Renamed"]
        assert client.get("/ready").status_code == 200
        assert api.ok("GET", "/api/system/info")["data"]["storage"] == "memory"
    assert not (settings.data_dir / EVENTS_FILE).exists()
