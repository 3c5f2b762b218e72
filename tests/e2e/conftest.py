"""End-to-end: HTTP through the real app, on SQLite and on real Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from infrastructure.settings import Settings
from interfaces.bootstrap.api import ApiRole
from interfaces.http.app import create_app
from interfaces.http.role import api_role
from interfaces.services import migrate


class Api:
    """A TestClient with helpers that unwrap the envelope."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    @property
    def role(self) -> ApiRole:
        """What the app runs, as its lifespan built it (``interfaces/bootstrap/api.py``)."""
        return api_role(self.client.app)

    def ok(self, method: str, path: str, status: int | None = None, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        expected = status or (200 if method in ("GET", "PUT", "PATCH", "DELETE") else None)
        if expected is not None:
            assert response.status_code == expected, response.text
        else:
            assert response.status_code < 300, response.text
        body = response.json()
        assert body["error"] is None
        return body

    def error(self, method: str, path: str, status: int, code: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        assert response.status_code == status, response.text
        body = response.json()
        assert body["data"] is None
        assert body["error"]["code"] == code, body
        assert body["meta"]["request_id"]
        return body["error"]

    def project(self, **fields: Any) -> dict[str, Any]:
        return self.ok("POST", "/api/projects/", 201, json={"name": "Web", **fields})["data"]

    def task(self, project_id: str, **fields: Any) -> dict[str, Any]:
        body = {"title": "Add login", "project_id": project_id, **fields}
        return self.ok("POST", "/api/tasks/", 201, json=body)["data"]

    def position(self) -> int:
        return self.role.services.ledger.max_position()


ADMIN_KEY = "test-admin-key-0123456789abcdef"


def make_settings(tmp_path: Path, url: str | None) -> Settings:
    """Rate limits on (every response carries the headers) but too high for a test to reach:
    tests of the limits build their own app with low ones."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=url,
        read_wait_seconds=30.0,  # reads after a write wait for the views: CI machines are loaded
        admin_key=ADMIN_KEY,
        rate_limit_anonymous=1_000_000,
        rate_limit_user=1_000_000,
        rate_limit_login=1_000_000,
        workers=0,  # nothing runs queued tasks unless a test starts workers
    )


def token(client: TestClient, team: str = "default", role: str = "admin") -> str:
    response = client.post(
        "/api/auth/token", json={"team_id": team, "role": role}, headers={"X-Admin-Key": ADMIN_KEY}
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]["access_token"]


def signed_in(client: TestClient, team: str = "default", role: str = "admin") -> Api:
    """The client, sending a token for ``team`` and ``role`` with every request."""
    client.headers["Authorization"] = f"Bearer {token(client, team, role)}"
    return Api(client)


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    migrate(settings)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield signed_in(client)


@pytest.fixture
def sqlite_api(tmp_path: Path) -> Iterator[Api]:
    """For tests of HTTP mechanics that do not depend on the store."""
    settings = make_settings(tmp_path, None)
    migrate(settings)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield signed_in(client)
