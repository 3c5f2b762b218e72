"""Quarantine through the real app and the CLI (SQLite and Postgres): /ready answers 503 while a
consumer is quarantining or stuck and 200 after; the admin endpoints and ``taskwarden quarantine``
list the entries, scoped to the team (everything with X-Admin-Key), and ask for a retry that the
consumer settles; /metrics and /api/health/detailed show every consumer in one shape."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from starlette.testclient import TestClient

from infrastructure.settings import Settings
from interfaces import cli
from interfaces.bootstrap.api import ApiRole
from interfaces.http.app import create_app
from interfaces.services import Services, build, migrate
from tests.clock import ManualClock
from tests.e2e.conftest import ADMIN_KEY, Api, make_settings, signed_in
from tests.poison import fix_topic, unknown_topic_row, wait_until

Q = "/api/admin/quarantine"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def services(tmp_path: Path, database_url: str | None, clock: ManualClock) -> Services:
    """The app's services on a clock the test moves: backoffs and "stuck" follow it. The app's
    role owns them and closes them (fixture ``api``)."""
    settings = msgspec.structs.replace(
        make_settings(tmp_path, database_url),
        consumer_max_attempts=3,
        consumer_backoff_seconds=1.0,
        consumer_max_backoff_seconds=1.0,
        ready_stuck_seconds=30.0,
    )
    migrate(settings)
    return build(settings, clock=clock)


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    role = ApiRole.from_settings(services.settings, services=services)
    with TestClient(create_app(api=role), raise_server_exceptions=False) as client:
        yield signed_in(client)


def consumer(services: Services, name: str) -> Any:
    return services.consumers.get(name)


def problems(api: Api) -> list[str]:
    response = api.get("/ready")
    body = response.json()
    assert (response.status_code == 200) == (body["status"] == "ready")
    return body["checks"]["consumers"]["problems"]  # type: ignore[no-any-return]


def quarantined_by_all(api: Api, services: Services, clock: ManualClock, position: int) -> None:
    """Moves the clock on until the projection runner and the relay have both passed over
    ``position`` (each waits out its backoffs on it)."""
    consumers = [consumer(services, name) for name in ("projections", "relay")]
    wait_until(moving(clock, lambda: all(c.position >= position for c in consumers)))


def moving(clock: ManualClock, condition: Callable[[], bool]) -> Callable[[], bool]:
    """``condition``, moving the clock on a second each time it is not met yet (backoffs, and
    the retry requests a consumer looks for every few seconds, follow it)."""

    def met() -> bool:
        if condition():
            return True
        clock.advance(1.0)
        return False

    return met


def test_ready_is_503_while_a_consumer_quarantines_or_is_stuck_and_200_after(api, services, clock):
    assert api.get("/ready").status_code == 200
    position, _ = unknown_topic_row(services.ledger, "default")
    runner = consumer(services, "projections")
    wait_until(lambda: runner.attempts == 1)  # it waits on the test's clock now
    assert api.get("/ready").status_code == 503
    assert f"projections quarantining position {position}" in problems(api)
    clock.advance(31)  # one backoff, and past the stuck threshold
    wait_until(lambda: runner.attempts == 2)
    assert f"projections stuck at {position}" in problems(api)
    quarantined_by_all(api, services, clock, position)
    wait_until(lambda: api.get("/ready").status_code == 200)

    detailed = api.ok("GET", "/api/health/detailed")["data"]["checks"]["consumers"]
    shapes = {c["name"]: c for c in detailed["consumers"]}
    assert {"projections", "relay"} <= set(shapes)
    assert set(shapes["relay"]) == {
        "name",
        "running",
        "position",
        "lag",
        "last_error",
        "failing_since",
        "failing_position",
        "attempts",
        "quarantining",
        "quarantined",
    }
    assert shapes["projections"]["quarantined"] == 1 and shapes["projections"]["attempts"] == 0
    metrics = api.get("/metrics").text
    assert 'taskwarden_consumer_quarantined_total{consumer="projections"} 1' in metrics
    assert 'taskwarden_consumer_lag{consumer="relay"}' in metrics


def test_the_admin_endpoints_list_by_team_and_a_retry_is_settled(api, services, clock):
    position, topic = unknown_topic_row(services.ledger, "default")
    teamless, _ = unknown_topic_row(services.ledger, None)
    quarantined_by_all(api, services, clock, teamless)

    mine = api.ok("GET", Q)["data"]
    assert {(e["consumer"], e["position"]) for e in mine["items"]} == {
        ("projections", position),
        ("relay", position),
    }
    assert mine["total"] == 2 and all(e["team_id"] == "default" for e in mine["items"])
    everything = api.ok("GET", Q, headers={"X-Admin-Key": ADMIN_KEY})["data"]
    assert {e["position"] for e in everything["items"]} == {position, teamless}
    api.error("GET", Q, 401, "AUTH_TOKEN_INVALID", headers={"X-Admin-Key": "wrong"})
    entry = next(e for e in mine["items"] if e["consumer"] == "projections")
    assert api.ok("GET", f"{Q}/{entry['id']}")["data"]["topic"] == topic
    api.error("GET", f"{Q}/{position}", 422, "VALIDATION_ERROR")  # two consumers have it
    assert api.ok("GET", f"{Q}/{position}?consumer=relay")["data"]["consumer"] == "relay"

    signed_in(api.client, team="team-b")
    assert api.ok("GET", Q)["data"]["items"] == []
    api.error("GET", f"{Q}/{entry['id']}", 404, "QUARANTINE_NOT_FOUND")
    api.error("POST", f"{Q}/{entry['id']}/retry", 404, "QUARANTINE_NOT_FOUND")
    signed_in(api.client, role="operator")
    api.error("GET", Q, 403, "AUTH_INSUFFICIENT_PERMISSIONS")
    signed_in(api.client)

    fix_topic(topic)
    asked = api.ok("POST", f"{Q}/{entry['id']}/retry", 202)
    assert asked["data"]["status"] == "retry_requested" and asked["meta"]["position"]
    assert asked["data"]["retry_requested_by"].startswith("token:")
    api.error("POST", f"{Q}/{entry['id']}/retry", 409, "QUARANTINE_NOT_QUARANTINED")

    def released() -> bool:
        return bool(api.ok("GET", f"{Q}/{entry['id']}")["data"]["status"] == "released")

    wait_until(moving(clock, released), 60)


def test_the_cli_lists_every_entry_and_asks_for_a_retry(api, services, clock, capsys):
    position, topic = unknown_topic_row(services.ledger, None)
    quarantined_by_all(api, services, clock, position)
    settings: Settings = services.settings
    env = {"TASKWARDEN_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env["TASKWARDEN_DATABASE_URL"] = settings.database_url
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        assert cli.main(["quarantine", "list", "--consumer", "projections"]) == 0
        listed = capsys.readouterr().out.splitlines()
        assert len(listed) == 2 and listed[1].split()[:4] == [
            str(position),
            "projections",
            "quarantined",
            "-",
        ]
        assert cli.main(["quarantine", "retry", str(position)]) == 1  # two consumers have it
        assert "name the consumer" in capsys.readouterr().err
        fix_topic(topic)
        assert cli.main(["quarantine", "retry", str(position), "--consumer", "relay"]) == 0
        assert "retry of relay" in capsys.readouterr().out
    service = services.quarantine
    wait_until(moving(clock, lambda: service.find(str(position), "relay").status == "released"), 60)


def test_the_admin_endpoints_are_in_the_openapi_document(api):
    paths = api.get("/openapi.json").json()["paths"]
    assert "get" in paths[Q] and "get" in paths[Q + "/{quarantine_id}"]
    assert "post" in paths[Q + "/{quarantine_id}/retry"]
