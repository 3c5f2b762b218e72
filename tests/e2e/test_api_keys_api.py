"""API keys over HTTP: issue, use (Bearer and X-API-Key), list, revoke, expiry, project scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from application.api_keys import issue_api_key
from application.auth import digest
from application.commands import CreateApiKey
from domain.values import Actor
from tests.clock import ManualClock
from tests.e2e.conftest import Api, token

KEYS = "/api/auth/api-keys"


def issue(api: Api, **fields: Any) -> dict[str, Any]:
    fields.setdefault("name", "ci")
    return api.ok("POST", KEYS, 201, json=fields)["data"]


def as_key(api: Api, key: str, method: str, path: str, *, via: str = "bearer", **kw: Any):
    """One request carrying only the key: in ``Authorization: Bearer`` or in ``X-API-Key``."""
    header = {"Authorization": f"Bearer {key}"} if via == "bearer" else {"X-API-Key": key}
    signed = api.client.headers.pop("Authorization")
    try:
        return api.client.request(method, path, headers=header, **kw)
    finally:
        api.client.headers["Authorization"] = signed


def keys(api: Api) -> list[dict[str, Any]]:
    return api.ok("GET", KEYS)["data"]["items"]


def stored_events(api: Api) -> list[tuple[str, str]]:
    """(topic, stored state as text) of every event in the event store."""
    recorder = api.role.services.ledger.recorder
    return [
        (n.topic, n.state.decode()) for n in recorder.select_notifications(start=1, limit=100_000)
    ]


# ---- issue, use, list, revoke --------------------------------------------------------------


def test_a_key_is_shown_once_works_as_bearer_and_as_x_api_key_and_dies_when_revoked(api):
    created = issue(api, name="deploy bot", role="operator")
    secret = created["key"]
    assert secret.startswith(f"tw_{created['id'].replace('-', '')}_")
    assert created["prefix"] == secret[:11] and created["role"] == "operator"

    for via in ("bearer", "x-api-key"):
        me = as_key(api, secret, "GET", "/api/auth/me", via=via)
        assert me.status_code == 200, me.text
        assert me.json()["data"]["actor_id"] == f"key:{created['id']}"
        assert me.json()["data"]["kind"] == "api_key"

    listed = api.get(KEYS)
    assert secret not in listed.text and secret.split("_", 2)[2] not in listed.text
    (item,) = listed.json()["data"]["items"]
    assert "key" not in item
    assert item["id"] == created["id"] and item["name"] == "deploy bot" and not item["revoked"]

    revoked = api.ok("DELETE", f"{KEYS}/{created['id']}")["data"]
    assert revoked["revoked"] is True
    for via in ("bearer", "x-api-key"):
        refused = as_key(api, secret, "GET", "/api/auth/me", via=via)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "AUTH_TOKEN_INVALID"
    assert keys(api)[0]["revoked"] is True


def test_the_listing_shows_every_key_of_the_team_newest_first(api):
    first, second = issue(api, name="one"), issue(api, name="two", role="approver")
    assert [k["id"] for k in keys(api)] == [second["id"], first["id"]]
    assert {k["role"] for k in keys(api)} == {"viewer", "approver"}


def test_the_secret_is_stored_only_as_a_digest_never_in_an_event(api):
    created = api.ok(
        "POST", KEYS, 201, json={"name": "ci"}, headers={"Idempotency-Key": "issue-1"}
    )["data"]
    secret = created["key"]
    assert as_key(api, secret, "GET", "/api/auth/me").status_code == 200  # records a use too
    api.ok("DELETE", f"{KEYS}/{created['id']}")
    events = stored_events(api)
    assert any(digest(secret) in state for _, state in events)  # the events are readable here
    random_part = secret.split("_", 2)[2]
    assert not any(random_part in state for _, state in events)
    topics = {topic for topic, _ in events}
    assert {"domain.credentials:ApiKey.Used", "domain.credentials:ApiKey.Revoked"} <= topics


def test_last_used_at_is_recorded_when_a_key_is_used(api):
    created = issue(api)
    assert keys(api)[0]["last_used_at"] is None
    before = datetime.now(UTC)
    assert as_key(api, created["key"], "GET", "/api/projects/").status_code == 200
    used = datetime.fromisoformat(keys(api)[0]["last_used_at"].replace("Z", "+00:00"))
    assert used >= before


def test_revoking_a_missing_key_answers_not_found(sqlite_api):
    sqlite_api.error(
        "DELETE", f"{KEYS}/4b1f8c1e-0000-4000-8000-000000000000", 404, "API_KEY_NOT_FOUND"
    )
    sqlite_api.error("DELETE", f"{KEYS}/not-a-key", 404, "API_KEY_NOT_FOUND")


# ---- roles ---------------------------------------------------------------------------------


def test_a_viewer_key_reads_but_cannot_write(api):
    project = api.project()
    secret = issue(api)["key"]  # viewer by default
    read = as_key(api, secret, "GET", f"/api/projects/{project['id']}")
    assert read.status_code == 200, read.text
    write = as_key(
        api, secret, "POST", "/api/tasks/", json={"title": "x", "project_id": project["id"]}
    )
    assert write.status_code == 403
    assert write.json()["error"]["code"] == "AUTH_INSUFFICIENT_PERMISSIONS"


def test_only_admins_manage_keys(sqlite_api):
    client = sqlite_api.client
    client.headers["Authorization"] = f"Bearer {token(client, role='operator')}"
    for method, path in (("POST", KEYS), ("GET", KEYS), ("DELETE", f"{KEYS}/x")):
        sqlite_api.error(method, path, 403, "AUTH_INSUFFICIENT_PERMISSIONS", json={"name": "x"})


def test_an_expiry_must_be_in_the_future_and_given_one_way(sqlite_api):
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    sqlite_api.error("POST", KEYS, 422, "VALIDATION_ERROR", json={"name": "x", "expires_at": past})
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    both = {"name": "x", "expires_at": later, "expires_in_days": 3}
    sqlite_api.error("POST", KEYS, 422, "VALIDATION_ERROR", json=both)
    naive = {"name": "x", "expires_at": "2999-01-01T00:00:00"}
    sqlite_api.error("POST", KEYS, 422, "VALIDATION_ERROR", json=naive)
    created = issue(sqlite_api, expires_in_days=3)
    expires = datetime.fromisoformat(created["expires_at"].replace("Z", "+00:00"))
    issued = datetime.fromisoformat(created["created_at"].replace("Z", "+00:00"))
    assert timedelta(days=3) - timedelta(minutes=1) < expires - issued <= timedelta(days=3)


def test_an_expired_key_is_refused(api, monkeypatch):
    """Issued through the application three days ago, for two days: it expired yesterday."""
    store = api.role.services.store
    by = Actor(id="test", team_id="default")
    command = CreateApiKey(name="old", expires_in_days=2)
    back_then = ManualClock()
    back_then.set(back_then.now() - timedelta(days=3))
    with monkeypatch.context() as patch:
        patch.setattr(store, "clock", back_then)
        old = issue_api_key(store, command, by).data
    fresh = issue_api_key(store, command, by).data
    assert as_key(api, fresh["key"], "GET", "/api/auth/me").status_code == 200
    refused = as_key(api, old["key"], "GET", "/api/auth/me")
    assert refused.status_code == 401 and "expired" in refused.json()["error"]["message"]


# ---- bad credentials -----------------------------------------------------------------------


def test_a_wrong_secret_for_a_real_key_is_refused(api):
    secret = issue(api)["key"]
    wrong = secret[:-4] + ("aaaa" if not secret.endswith("aaaa") else "bbbb")
    for via in ("bearer", "x-api-key"):
        response = as_key(api, wrong, "GET", "/api/auth/me", via=via)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "AUTH_TOKEN_INVALID"


@pytest.mark.parametrize(
    "credential",
    [
        "tw_",
        "tw__",
        "tw_nothex_secret",
        "tw_0123456789abcdef0123456789abcdef",
        "tw_0123456789abcdef0123456789abcdef_",
        "tw_0123456789abcdef0123456789abcdef_guess",
        "tw_" + "f" * 300 + "_x",
    ],
)
def test_malformed_tw_credentials_are_refused(sqlite_api, credential):
    for via in ("bearer", "x-api-key"):
        response = as_key(sqlite_api, credential, "GET", "/api/projects/", via=via)
        assert response.status_code == 401, response.text


def test_a_tw_credential_naming_an_object_that_is_not_a_key_is_refused(sqlite_api):
    project = sqlite_api.project()
    forged = f"tw_{project['id'].replace('-', '')}_anything"
    assert as_key(sqlite_api, forged, "GET", "/api/projects/").status_code == 401


# ---- teams ---------------------------------------------------------------------------------


def test_a_key_of_one_team_never_reaches_another_teams_objects(api):
    mine = issue(api, role="admin")
    client = api.client
    default_token = client.headers["Authorization"]
    client.headers["Authorization"] = f"Bearer {token(client, team='team-b')}"
    theirs_project = api.project(name="B")
    theirs_task = api.task(theirs_project["id"])
    theirs_key = issue(api, name="b-key")
    client.headers["Authorization"] = default_token

    for path in (
        f"/api/tasks/{theirs_task['id']}",
        f"/api/projects/{theirs_project['id']}",
        f"/api/projects/{theirs_project['id']}/tasks",
    ):
        assert as_key(api, mine["key"], "GET", path).status_code == 404, path
    revoke = as_key(api, mine["key"], "DELETE", f"{KEYS}/{theirs_key['id']}")
    assert revoke.status_code == 404
    assert [k["id"] for k in keys(api)] == [mine["id"]]
    scoped_elsewhere = {"name": "x", "project_id": theirs_project["id"]}
    api.error("POST", KEYS, 404, "PROJECT_NOT_FOUND", json=scoped_elsewhere)
    assert as_key(api, theirs_key["key"], "GET", "/api/auth/me").json()["data"]["team_id"] == (
        "team-b"
    )


# ---- project scope -------------------------------------------------------------------------


@pytest.fixture
def scoped(api):
    """A team with two projects of one task each, and an operator key scoped to the first."""
    ours, other = api.project(name="Ours", slug="ours"), api.project(name="Other")
    ours_task, other_task = api.task(ours["id"]), api.task(other["id"])
    key = issue(api, role="operator", project_id="ours")  # by slug
    assert key["project_id"] == ours["id"]

    def request(method: str, path: str, **kw: Any) -> httpx.Response:
        return as_key(api, key["key"], method, path, **kw)

    return {
        "api": api,
        "request": request,
        "ours": ours,
        "other": other,
        "ours_task": ours_task,
        "other_task": other_task,
    }


def test_a_project_scoped_key_reaches_its_project_and_its_tasks(scoped):
    request, ours, task = scoped["request"], scoped["ours"], scoped["ours_task"]
    assert request("GET", f"/api/tasks/{task['id']}").status_code == 200
    assert request("GET", f"/api/projects/{ours['id']}").status_code == 200
    patch = request("PATCH", f"/api/tasks/{task['id']}", json={"title": "Renamed"})
    assert patch.status_code == 200 and patch.json()["data"]["title"] == "Renamed"
    assert request("POST", f"/api/tasks/{task['id']}/execute").status_code == 202
    created = request("POST", "/api/tasks/", json={"title": "New", "project_id": ours["id"]})
    assert created.status_code == 201, created.text


def test_a_project_scoped_key_finds_nothing_in_other_projects(scoped):
    request, other, task = scoped["request"], scoped["other"], scoped["other_task"]
    attempts = [
        ("GET", f"/api/tasks/{task['id']}", None),
        ("GET", f"/api/tasks/{task['id']}/status", None),
        ("GET", f"/api/tasks/{task['id']}/history", None),
        ("PATCH", f"/api/tasks/{task['id']}", {"title": "Hijacked"}),
        ("POST", f"/api/tasks/{task['id']}/execute", {}),
        ("DELETE", f"/api/tasks/{task['id']}", None),
        ("GET", f"/api/projects/{other['id']}", None),
        ("GET", f"/api/projects/{other['id']}/tasks", None),
        ("PATCH", f"/api/projects/{other['id']}", {"name": "Hijacked"}),
        ("POST", "/api/tasks/", {"title": "Smuggled", "project_id": other["id"]}),
    ]
    for method, path, body in attempts:
        response = request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
    untouched = scoped["api"].ok("GET", f"/api/tasks/{task['id']}")["data"]
    assert untouched["title"] == task["title"] and untouched["status"] == "pending"


def test_a_project_scoped_key_lists_only_its_project(scoped):
    api, request, ours = scoped["api"], scoped["request"], scoped["ours"]
    after = f"min_position={api.position()}"
    tasks = request("GET", f"/api/tasks/?{after}").json()["data"]
    assert [t["id"] for t in tasks["items"]] == [scoped["ours_task"]["id"]]
    assert tasks["total"] == 1
    elsewhere = request("GET", f"/api/tasks/?project_id={scoped['other']['id']}&{after}")
    assert elsewhere.status_code == 404
    projects = request("GET", f"/api/projects/?{after}").json()["data"]
    assert [p["id"] for p in projects["items"]] == [ours["id"]] and projects["total"] == 1
    assert projects["items"][0]["statistics"]["total_tasks"] == 1
    archived_only = request("GET", f"/api/projects/?status=archived&{after}").json()["data"]
    assert archived_only["items"] == [] and archived_only["total"] == 0
    everything = api.ok("GET", f"/api/projects/?{after}")["data"]
    assert everything["total"] == 2  # the team's own token still sees both


def test_a_project_scoped_key_cannot_create_projects_nor_administer(scoped):
    request, ours = scoped["request"], scoped["ours"]
    for method, path, body in (
        ("POST", "/api/projects/", {"name": "Another"}),
        ("POST", f"/api/projects/{ours['id']}/clone", {"name": "Copy"}),
    ):
        response = request(method, path, json=body)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "AUTH_INSUFFICIENT_PERMISSIONS"
    api = scoped["api"]
    admin_key = issue(api, role="admin", project_id=ours["id"])["key"]
    minted = as_key(api, admin_key, "POST", KEYS, json={"name": "escape", "role": "admin"})
    assert minted.status_code == 403  # else a scoped key could mint an unscoped one
    everything = api.ok("GET", f"/api/projects/?min_position={api.position()}")["data"]
    assert everything["total"] == 2


def test_a_project_scoped_key_submits_into_its_own_project(scoped):
    api, request, ours = scoped["api"], scoped["request"], scoped["ours"]
    submitted = request("POST", "/api/tasks/submit", json={"description": "Fix the login page"})
    assert submitted.status_code == 202, submitted.text
    task = api.ok("GET", f"/api/tasks/{submitted.json()['data']['task_id']}")["data"]
    assert task["project_id"] == ours["id"]
    elsewhere = request(
        "POST",
        "/api/tasks/submit",
        json={"description": "Smuggled", "project_id": scoped["other"]["id"]},
    )
    assert elsewhere.status_code == 404
