"""``GET /api/audit/export`` and ``GET /api/audit/key`` through HTTP, on SQLite and Postgres: an
admin's export is its own team's events, streamed as JSON lines, and verifies with the served key;
other roles are refused, another team's events never appear, bad ranges answer 422."""

from __future__ import annotations

import json

import pytest

from application.audit.export import FORMAT
from application.audit.verify import verify
from infrastructure.audit_key import PublicKey
from tests.e2e.conftest import Api, token

NDJSON = "application/x-ndjson"


def bearer(api: Api, team: str = "default", role: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(api.client, team, role)}"}


def lines_of(api: Api, **kwargs: object) -> list[bytes]:
    response = api.client.get("/api/audit/export", **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(NDJSON)
    return response.content.splitlines(keepends=True)


def test_an_admins_export_holds_its_teams_events_only_and_verifies_with_the_served_key(api):
    project = api.project(name="Audited")
    task = api.task(project["id"], title="Kestrel audit")
    other = bearer(api, "other-team")
    theirs = api.client.post("/api/projects/", json={"name": "Osprey secret"}, headers=other)
    assert theirs.status_code == 201, theirs.text
    served = api.ok("GET", "/api/audit/key")["data"]
    key = PublicKey.from_text(served["public_key_base64"])
    lines = lines_of(api)
    verdict = verify(lines, key)
    assert verdict.intact, verdict.problem
    header, *records, head = (json.loads(line) for line in lines)
    assert header["format"] == head["format"] == FORMAT
    assert head["team"] == "default" and head["key_id"] == served["key_id"]
    states = [json.loads(r["state"]) for r in records]
    assert {s["team_id"] for s in states} == {"default"}
    ids = {r["originator_id"] for r in records}
    assert {project["id"], task["id"]} <= ids
    assert theirs.json()["data"]["id"] not in ids
    assert b"Osprey" not in b"".join(lines) and b"Kestrel" in b"".join(lines)


def test_another_teams_admin_exports_its_own_events_and_none_of_ours(api):
    api.task(api.project(name="Ours")["id"], title="Heron private")
    lines = lines_of(api, headers=bearer(api, "other-team"))
    head = json.loads(lines[-1])
    assert head["team"] == "other-team"
    assert b"Heron" not in b"".join(lines)
    assert verify(lines, api.role.services.audit_key.public).intact


def test_a_range_of_positions_is_exported_and_verifies(api):
    api.task(api.project()["id"])
    last = api.position()
    lines = lines_of(api, params={"from": "2", "to": str(last)})
    header, *records, head = (json.loads(line) for line in lines)
    assert (head["from"], head["to"]) == (2, last)
    assert all(2 <= r["position"] <= last for r in records)
    assert verify(lines, api.role.services.audit_key.public).intact


@pytest.mark.parametrize("role", ["viewer", "operator", "approver", "agent"])
def test_only_admins_export(api, role):
    answer = api.client.get("/api/audit/export", headers=bearer(api, role=role))
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "AUTH_INSUFFICIENT_PERMISSIONS"


def test_every_reader_gets_the_public_key_and_no_one_without_credentials(api):
    for role in ("viewer", "operator", "approver", "admin"):
        data = api.ok("GET", "/api/audit/key", headers=bearer(api, role=role))["data"]
        assert data["key_id"] == api.role.services.audit_key.key_id
        assert "PRIVATE" not in json.dumps(data)
    answer = api.client.get("/api/audit/key", headers={"Authorization": ""})
    assert answer.status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {"from": "-1"},
        {"to": "-5"},
        {"from": "abc"},
        {"to": "1.5"},
        {"from": "9", "to": "3"},
        {"from": str(2**63)},
        {"team": "other-team"},  # an admin's export is its own team's: no team parameter
    ],
)
def test_a_bad_range_answers_422_in_the_envelope(api, params):
    api.error("GET", "/api/audit/export", 422, "VALIDATION_ERROR", params=params)
