"""``GET /api/audit/head`` over HTTP, on SQLite and Postgres: the newest write-time digest, the
chain over every team's stored events up to its position; admins only; no parameters."""

from __future__ import annotations

from application.audit.chain import GENESIS, chain
from tests.e2e.conftest import Api, token


def head(api: Api, **headers: str) -> dict:
    return api.ok("GET", "/api/audit/head", headers=headers)["data"]


def stored(api: Api) -> list:
    return list(api.role.services.store.notifications(0, 100_000))


def test_before_any_event_the_head_is_genesis(api):
    assert head(api) == {"position": 0, "digest": GENESIS, "at": None}


def test_the_head_is_the_chain_over_every_stored_event_and_moves_with_each_write(api):
    api.project(name="First")
    first = head(api)
    events = stored(api)
    assert first["position"] == events[-1].id == api.position()
    assert first["digest"] == chain(GENESIS, events)
    assert first["at"].endswith("Z")
    project = api.project()
    other = {"Authorization": f"Bearer {token(api.client, team='other')}"}
    api.ok("POST", "/api/projects/", 201, json={"name": "Theirs"}, headers=other)
    after = head(api)
    assert after["position"] == api.position() > first["position"]
    assert after["digest"] == chain(GENESIS, stored(api))  # every team's events: one log
    assert head(api, **other) == after
    assert project["id"] not in str(after)


def test_only_admins_read_the_head(api):
    for role in ("operator", "approver", "viewer", "agent"):
        headers = {"Authorization": f"Bearer {token(api.client, role=role)}"}
        response = api.client.get("/api/audit/head", headers=headers)
        assert response.status_code == 403, (role, response.text)
        assert response.json()["error"]["code"] == "AUTH_INSUFFICIENT_PERMISSIONS"
    anonymous = api.client.get("/api/audit/head", headers={"Authorization": ""})
    assert anonymous.status_code == 401


def test_a_query_parameter_is_refused(api):
    api.error("GET", "/api/audit/head", 422, "VALIDATION_ERROR", params={"position": "3"})
