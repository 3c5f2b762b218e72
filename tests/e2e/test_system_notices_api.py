"""Seed 000's system events over HTTP: maintenance and alerts, admins only, published."""

from __future__ import annotations

from application.public_events import public_events, seed_types, subject
from tests.e2e.conftest import Api, token


def published(api: Api) -> list:
    ledger = api.role.services.ledger
    events, _ = public_events(ledger, 0, 10_000)
    return [e for e in events if e.aggregate == "system"]


def test_an_admin_announces_maintenance_and_it_is_published_for_the_team(api):
    body = {"message": "upgrading", "starts_at": "2030-01-01T00:00:00Z"}
    answer = api.ok("POST", "/api/system/maintenance", 201, json=body)
    assert answer["data"]["type"] == "system.maintenance"
    assert answer["data"]["starts_at"] == "2030-01-01T00:00:00.000000Z"
    [event] = published(api)
    assert event.type == "system.maintenance" and event.team_id == "default"
    assert event.data["message"] == "upgrading" and event.position == answer["meta"]["position"]
    assert subject(event) == "taskwarden.default.system.maintenance"
    assert seed_types(event) == ["system.maintenance"]


def test_alerts_are_published_in_order_with_their_severity(api):
    api.ok("POST", "/api/system/alerts", 201, json={"message": "disk 90%"})
    api.ok("POST", "/api/system/alerts", 201, json={"message": "disk 99%", "severity": "critical"})
    events = published(api)
    assert [(e.type, e.data["severity"]) for e in events] == [
        ("system.alert", "warning"),
        ("system.alert", "critical"),
    ]


def test_only_admins_raise_system_events(sqlite_api):
    operator = {"Authorization": f"Bearer {token(sqlite_api.client, 'default', 'operator')}"}
    for path, body in (
        ("/api/system/alerts", {"message": "x"}),
        ("/api/system/maintenance", {"message": "x"}),
    ):
        response = sqlite_api.client.post(path, json=body, headers=operator)
        assert response.status_code == 403, response.text
    assert published(sqlite_api) == []


def test_bad_bodies_are_refused_and_publish_nothing(sqlite_api):
    for body in (
        {},
        {"message": ""},
        {"message": "x", "severity": "apocalyptic"},
        {"message": "x", "extra": 1},
        {"message": "x", "starts_at": "tomorrow"},
        {"message": "x", "starts_at": "2030-01-01T00:00:00"},  # no zone
    ):
        path = "/api/system/alerts" if "severity" in body else "/api/system/maintenance"
        sqlite_api.error("POST", path, 422, "VALIDATION_ERROR", json=body)
    assert published(sqlite_api) == []
