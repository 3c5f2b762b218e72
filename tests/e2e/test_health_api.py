"""Probes, metrics, system information and the OpenAPI document."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from starlette.testclient import TestClient

from infrastructure.settings import Settings
from interfaces.http.app import create_app
from interfaces.services import migrate
from tests.e2e.conftest import ADMIN_KEY, signed_in


def test_liveness_and_readiness(api):
    assert api.get("/health").json() == {"status": "ok"}
    ready = api.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_seed_health_endpoints(api):
    assert api.ok("GET", "/api/health/")["data"]["status"] == "healthy"
    detailed = api.ok("GET", "/api/health/detailed")["data"]
    assert detailed["checks"]["database"]["status"] == "healthy"
    assert "lag" in detailed["checks"]["projections"]
    info = api.ok("GET", "/api/system/info")["data"]
    assert info["storage"] in ("sqlite", "postgres") and info["limits"]["max_page_size"] == 100


def test_metrics_are_prometheus_text(api):
    def created() -> int:
        line = 'taskwarden_http_requests_total{method="POST",status="201"} '
        text = api.get("/metrics").text
        return sum(int(row.split()[-1]) for row in text.splitlines() if row.startswith(line))

    before = created()
    api.project()
    api.project()
    assert created() == before + 2
    text = api.get("/metrics").text
    assert "taskwarden_log_position" in text and "taskwarden_projection_lag" in text


def test_openapi_lists_every_route_and_its_schemas(api):
    spec = api.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "post" in spec["paths"]["/api/tasks/"]
    assert "get" in spec["paths"]["/api/tasks/{task_id}/history"]
    create = spec["components"]["schemas"]["CreateTask"]
    assert "title" in create["required"] and create["additionalProperties"] is False
    page = api.get("/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # renders offline


@pytest.mark.slow
def test_ready_is_503_while_the_store_is_unreachable(
    tmp_path: Path, postgres_admin_url, postgres_url
):
    settings = Settings(
        data_dir=tmp_path, database_url=postgres_url, read_wait_seconds=1, admin_key=ADMIN_KEY
    )
    migrate(settings)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.get("/ready").status_code == 200
        signed_in(client)
        name = postgres_url.rsplit("/", 1)[1].split("?")[0]
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        response = client.get("/ready")
        assert response.status_code == 503 and response.json()["status"] == "unavailable"
        listing = client.get("/api/tasks/")
        assert listing.status_code == 503
        assert listing.json()["error"]["code"] == "DATABASE_ERROR"
        assert listing.headers["retry-after"] == "1"
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
