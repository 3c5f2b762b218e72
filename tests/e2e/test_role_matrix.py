"""Roles over every route: who is refused (403), who is not let in (401), who passes.

The matrix is driven by the route table, so a route added later is covered as soon as it exists:
for each role and each non-public endpoint, the answer is 403 AUTH_INSUFFICIENT_PERMISSIONS
exactly when the role's grants lack what the endpoint needs, and never a 401 or 403 otherwise (a
404, 409 or 422 from the handler proves that the permission check let the request through).
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import msgspec
import pytest

from domain.values import GRANTS, Permission, Role
from interfaces.http.app import ENDPOINTS
from interfaces.http.endpoint import Endpoint
from tests.e2e.conftest import Api, make_settings, token
from tests.e2e.runner_steps import to_review

PROTECTED = [e for e in ENDPOINTS if not e.public]
PUBLIC = [e for e in ENDPOINTS if e.public]
MISSING_ID = "7f1d2c3b-0000-4000-8000-00000000beef"
SECURITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def concrete(path: str) -> str:
    """Every path parameter names nothing: a handler that is reached answers 404 or 422."""
    return re.sub(r"{\w+}", MISSING_ID, path)


def call(api: Api, endpoint: Endpoint, headers: dict[str, str]) -> Any:
    body = {} if endpoint.method != "GET" else None
    return api.client.request(endpoint.method, concrete(endpoint.path), json=body, headers=headers)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def without_credentials(api: Api) -> Api:
    api.client.headers.pop("Authorization", None)
    return api


def refused(response: Any, role: str, needs: Permission) -> str | None:
    """None if ``response`` is the 403 the role should get, else what is wrong with it."""
    if response.status_code != 403:
        return f"{response.status_code} {response.text[:200]}"
    error = response.json()["error"]
    if error["code"] != "AUTH_INSUFFICIENT_PERMISSIONS" or error["details"] != {
        "role": role,
        "permission": needs.value,
    }:
        return f"403 with {error}"
    return None


def passed(response: Any) -> str | None:
    if response.status_code in (401, 403) or response.status_code >= 500:
        return f"{response.status_code} {response.text[:200]}"
    return None


def check_matrix(api: Api, role: Role, headers: dict[str, str]) -> list[str]:
    wrong = []
    for endpoint in PROTECTED:
        response = call(api, endpoint, headers)
        needs = endpoint.needs
        assert needs is not None
        problem = refused(response, role.value, needs) if needs not in GRANTS[role] else None
        if needs in GRANTS[role]:
            problem = passed(response)
        if problem:
            wrong.append(f"{role.value} {endpoint.method} {endpoint.path}: {problem}")
    return wrong


# ---- the matrix ---------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path, database_url):  # commands are off by default: reach their handlers too
    return msgspec.structs.replace(make_settings(tmp_path, database_url), commands_enabled=True)


@pytest.mark.parametrize("role", list(Role))
def test_a_minted_token_is_refused_exactly_where_its_role_lacks_the_permission(api, role):
    headers = bearer(token(api.client, role=role.value))
    before = api.position()
    assert check_matrix(api, role, headers) == []
    if role is Role.AGENT:  # refused, or (worker routes) an empty body: nothing written
        assert api.position() == before


@pytest.mark.parametrize("role", list(Role))
def test_an_api_key_is_refused_exactly_where_its_role_lacks_the_permission(api, role):
    issued = api.ok("POST", "/api/auth/api-keys", 201, json={"name": "m", "role": role.value})
    key = issued["data"]["key"]
    assert check_matrix(api, role, bearer(key)) == []
    assert check_matrix(api, role, {"X-API-Key": key, "Authorization": ""}) == []


@pytest.mark.parametrize("role", list(Role))
def test_a_signed_in_user_is_refused_exactly_where_its_role_lacks_the_permission(api, role):
    name = f"matrix-{role.value}"
    password = "correct horse battery staple"
    api.ok("POST", "/api/users/", 201, json={"username": name, "password": password, "role": role})
    login = api.ok("POST", "/api/auth/login", json={"username": name, "password": password})
    assert check_matrix(api, role, bearer(login["data"]["access_token"])) == []


def test_every_role_has_grants_and_the_matrix_covers_every_permission_in_use():
    assert set(GRANTS) == set(Role)
    assert {e.needs for e in PROTECTED} <= set(Permission)
    assert all(e.needs is not None for e in PROTECTED)
    assert all(e.needs is None for e in PUBLIC)


# ---- without credentials, with bad ones ---------------------------------------------------


def test_without_credentials_every_non_public_route_answers_401_with_www_authenticate(api):
    without_credentials(api)
    for endpoint in PROTECTED:
        response = call(api, endpoint, {})
        assert response.status_code == 401, (endpoint.method, endpoint.path, response.text)
        assert response.json()["error"]["code"] == "AUTH_TOKEN_MISSING"
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="taskwarden"'


def test_a_basic_or_empty_authorization_counts_as_no_credentials(sqlite_api):
    without_credentials(sqlite_api)
    for headers in ({"Authorization": "Basic YWRtaW46YWRtaW4="}, {"Authorization": "Bearer "}):
        for endpoint in PROTECTED:
            response = call(sqlite_api, endpoint, headers)
            assert response.status_code == 401, (endpoint.path, response.text)
            assert response.json()["error"]["code"] == "AUTH_TOKEN_MISSING"


def forged(secret: str, algorithm: str = "HS256", **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": "taskwarden",
        "aud": "taskwarden-api",
        "iat": now,
        "exp": now + 600,
        "sub": "token:forged",
        "typ": "access",
        "team": "default",
        "role": "admin",
        **claims,
    }
    return jwt.encode(payload, secret if algorithm != "none" else None, algorithm=algorithm)


BAD_CREDENTIALS = {
    "garbage bearer": bearer("garbage"),
    "unknown tw_ key as bearer": bearer(f"tw_{uuid.uuid4().hex}_nothing"),
    "unknown tw_ key in X-API-Key": {"X-API-Key": f"tw_{uuid.uuid4().hex}_nothing"},
    "a JWT signed with another secret": bearer(forged("another-secret-" + "x" * 32)),
    "a JWT with alg none": bearer(forged("", algorithm="none")),
}


@pytest.mark.parametrize("credential", list(BAD_CREDENTIALS))
def test_bad_credentials_answer_401_token_invalid_on_every_non_public_route(api, credential):
    without_credentials(api)
    for endpoint in PROTECTED:
        response = call(api, endpoint, BAD_CREDENTIALS[credential])
        assert response.status_code == 401, (endpoint.method, endpoint.path, response.text)
        assert response.json()["error"]["code"] == "AUTH_TOKEN_INVALID"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_public_routes_answer_without_credentials(api):
    without_credentials(api)
    for endpoint in PUBLIC:
        response = call(api, endpoint, {})
        assert response.status_code < 500, (endpoint.path, response.text)
        if endpoint.method == "GET":
            assert response.status_code == 200, (endpoint.path, response.text)
        else:  # an empty body: the handler itself refuses it, no credentials were asked for
            assert response.status_code == 422, (endpoint.path, response.text)


# ---- function level -----------------------------------------------------------------------


def as_role(api: Api, role: str) -> dict[str, str]:
    return bearer(token(api.client, role=role))


def test_a_viewer_reads_but_cannot_write_anything(api):
    project = api.project(slug="web")
    task = api.task(project["id"], slug="login")
    viewer = as_role(api, "viewer")
    before = api.position()
    writes = [
        ("POST", "/api/projects/", {"name": "Mine"}),
        ("POST", "/api/tasks/", {"title": "Mine", "project_id": "web"}),
        ("PATCH", "/api/tasks/login", {"title": "Renamed"}),
        ("DELETE", "/api/tasks/login", {}),
        ("POST", "/api/tasks/login/execute", {}),
        ("POST", "/api/tasks/login/cancel", {}),
        ("POST", "/api/tasks/bulk", {"operation": "delete", "task_ids": ["login"]}),
        ("PUT", "/api/projects/web", {"name": "Renamed"}),
        ("DELETE", "/api/projects/web", None),
    ]
    for method, path, body in writes:
        response = api.client.request(method, path, json=body, headers=viewer)
        assert response.status_code == 403, (method, path, response.text)
    assert api.position() == before
    read = api.client.get("/api/tasks/login", headers=viewer)
    assert read.status_code == 200 and read.json()["data"]["id"] == task["id"]
    assert read.json()["data"]["title"] == task["title"]


def test_an_operator_runs_tasks_but_cannot_approve_nor_administer_the_team(api):
    operator = as_role(api, "operator")
    project = api.client.post("/api/projects/", json={"name": "Ops"}, headers=operator)
    assert project.status_code == 201, project.text
    created = api.client.post(
        "/api/tasks/",
        json={"title": "Ship", "project_id": project.json()["data"]["id"]},
        headers=operator,
    )
    assert created.status_code == 201, created.text
    task_id = created.json()["data"]["id"]
    executed = api.client.post(f"/api/tasks/{task_id}/execute", json={}, headers=operator)
    assert executed.status_code == 202, executed.text
    to_review(api, task_id)
    for action, body in (("approve", {}), ("reject", {"reason": "no"})):
        response = api.client.post(f"/api/tasks/{task_id}/{action}", json=body, headers=operator)
        assert refused(response, "operator", Permission.DECIDE) is None, response.text
    admin_work = [
        ("POST", "/api/auth/api-keys", {"name": "mine", "role": "admin"}),
        ("GET", "/api/auth/api-keys", None),
        ("POST", "/api/users/", {"username": "eve", "password": "long enough pw", "role": "admin"}),
        ("GET", "/api/users/", None),
    ]
    for method, path, body in admin_work:
        response = api.client.request(method, path, json=body, headers=operator)
        assert refused(response, "operator", Permission.ADMIN) is None, (path, response.text)
    status = api.ok("GET", f"/api/tasks/{task_id}")["data"]["status"]
    assert status == "awaiting_approval"
    cancelled = api.client.post(f"/api/tasks/{task_id}/cancel", json={}, headers=operator)
    # work in review has no agent left to stop: it is cancelled at once
    assert cancelled.status_code == 200 and cancelled.json()["data"]["status"] == "cancelled"


def test_an_approver_approves_and_rejects_but_cannot_create_or_run(api):
    project = api.project()
    approved, rejected = api.task(project["id"]), api.task(project["id"])
    for task in (approved, rejected):
        api.ok("POST", f"/api/tasks/{task['id']}/execute", 202)
        to_review(api, task["id"])
    approver = as_role(api, "approver")
    ok = api.client.post(f"/api/tasks/{approved['id']}/approve", json={}, headers=approver)
    assert ok.status_code == 200 and ok.json()["data"]["status"] == "completed", ok.text
    back = api.client.post(
        f"/api/tasks/{rejected['id']}/reject", json={"reason": "tests fail"}, headers=approver
    )
    assert back.status_code == 202 and back.json()["data"]["status"] == "queued", back.text
    before = api.position()
    refusals = [
        ("POST", "/api/tasks/", {"title": "Mine", "project_id": project["id"]}),
        ("POST", "/api/projects/", {"name": "Mine"}),
        ("POST", f"/api/tasks/{rejected['id']}/cancel", {}),
        ("POST", "/api/auth/api-keys", {"name": "mine"}),
    ]
    for method, path, body in refusals:
        response = api.client.request(method, path, json=body, headers=approver)
        assert response.status_code == 403, (path, response.text)
    assert api.position() == before


def test_an_agent_token_reads_nothing_of_the_team(api):
    project = api.project()
    agent = as_role(api, "agent")
    for path in ("/api/projects/", f"/api/projects/{project['id']}", "/api/tasks/"):
        response = api.client.get(path, headers=agent)
        assert refused(response, "agent", Permission.READ) is None, response.text
        assert project["id"] not in response.text


# ---- docs/security.md lists every route with its permission --------------------------------


def documented_routes() -> dict[tuple[str, str], str]:
    """Rows ``| `METHOD` | `path` | permission |`` of the route table in docs/security.md."""
    row = re.compile(r"^\|\s*`(GET|POST|PUT|PATCH|DELETE)`\s*\|\s*`([^`]+)`\s*\|\s*(\w+)")
    table = {}
    for line in SECURITY_DOC.read_text(encoding="utf-8").splitlines():
        match = row.match(line)
        if match:
            table[(match[1], match[2])] = match[3]
    return table


def test_security_doc_lists_every_route():
    documented = documented_routes()
    expected = {
        (e.method, e.path): "public" if e.needs is None else e.needs.value for e in ENDPOINTS
    }
    missing = sorted(set(expected) - set(documented))
    assert not missing, f"docs/security.md lacks these routes: {missing}"
    wrong = {k: (documented[k], v) for k, v in expected.items() if documented[k] != v}
    assert not wrong, f"docs/security.md names the wrong permission (doc, code): {wrong}"
    stale = sorted(set(documented) - set(expected))
    assert not stale, f"docs/security.md lists routes that no longer exist: {stale}"
