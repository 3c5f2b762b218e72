"""Users over HTTP: admins create, list, read and change the users of their own team; every user
reads their profile and replaces their preferences."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.conftest import Api, token

USERS = "/api/users"
PASSWORD = "password-1"


def add_user(
    api: Api,
    username: str,
    role: str = "operator",
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Created by the fixture's admin (a minted token for team ``default``), unless ``headers``."""
    body = {"username": username, "password": PASSWORD, "role": role, **fields}
    return api.ok("POST", USERS, 201, json=body, headers=headers)["data"]


def login(api: Api, username: str, password: str = PASSWORD) -> dict[str, Any]:
    response = api.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def as_user(api: Api, access_token: str, method: str, path: str, **kw: Any) -> httpx.Response:
    return api.request(method, path, headers=bearer(access_token), **kw)


def signed_in_user(api: Api, username: str, role: str = "operator") -> str:
    """A new user of team ``default``, logged in: their access token."""
    add_user(api, username, role)
    return login(api, username)["access_token"]


# ---- create, read ----------------------------------------------------------------------------


def test_an_admin_creates_a_user_in_their_own_team_and_reads_it_back(api):
    response = api.post(
        USERS,
        json={
            "username": "ann",
            "password": PASSWORD,
            "role": "approver",
            "email": "ann@example.com",
            "full_name": "Ann Example",
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()["data"]
    assert int(response.headers["X-Position"]) >= 1
    assert created["team_id"] == "default" and created["role"] == "approver"
    assert created["disabled"] is False and created["last_login"] is None
    assert "password" not in response.text and "scrypt" not in response.text
    assert api.ok("GET", f"{USERS}/{created['id']}")["data"] == created


def test_usernames_are_unique_across_teams_whatever_their_case(api):
    add_user(api, "ann")
    api.error(
        "POST",
        USERS,
        409,
        "RESOURCE_ALREADY_EXISTS",
        json={"username": "ANN", "password": PASSWORD},
    )
    other = {"Authorization": f"Bearer {token(api.client, 'other')}"}
    api.error(
        "POST",
        USERS,
        409,
        "RESOURCE_ALREADY_EXISTS",
        json={"username": "ann", "password": PASSWORD},
        headers=other,
    )


def test_a_user_body_is_validated(sqlite_api):
    for body in (
        {"username": "ann", "password": "short"},
        {"username": "ann", "password": PASSWORD, "role": "owner"},
        {"username": "a b", "password": PASSWORD},
        {"username": "ann", "password": PASSWORD, "team_id": "other"},
        {"username": "ann", "password": PASSWORD, "email": "not-an-email"},
    ):
        sqlite_api.error("POST", USERS, 422, "VALIDATION_ERROR", json=body)


def test_another_teams_user_and_a_missing_one_are_both_not_found(api):
    ann = add_user(api, "ann")
    other = {"Authorization": f"Bearer {token(api.client, 'other')}"}
    for ref in (ann["id"], "00000000-0000-0000-0000-000000000000", "ann"):
        api.error("GET", f"{USERS}/{ref}", 404, "USER_NOT_FOUND", headers=other)
    api.error(
        "PATCH",
        f"{USERS}/{ann['id']}",
        404,
        "USER_NOT_FOUND",
        json={"role": "admin"},
        headers=other,
    )
    assert api.ok("GET", f"{USERS}/{ann['id']}")["data"]["role"] == "operator"


def test_only_admins_administer_users(sqlite_api):
    ann = add_user(sqlite_api, "ann")
    for role in ("operator", "approver", "viewer", "agent"):
        headers = {"Authorization": f"Bearer {token(sqlite_api.client, 'default', role)}"}
        for method, path, body in (
            ("POST", USERS, {"username": f"x-{role}", "password": PASSWORD}),
            ("GET", USERS, None),
            ("GET", f"{USERS}/{ann['id']}", None),
            ("PATCH", f"{USERS}/{ann['id']}", {"role": "admin"}),
        ):
            sqlite_api.error(
                method, path, 403, "AUTH_INSUFFICIENT_PERMISSIONS", json=body, headers=headers
            )
    assert sqlite_api.ok("GET", f"{USERS}/{ann['id']}")["data"]["role"] == "operator"


# ---- list ------------------------------------------------------------------------------------


def test_the_listing_pages_through_the_teams_users_in_the_order_they_joined(api):
    for name in ("ann", "bob", "cat"):
        add_user(api, name)
    other = {"Authorization": f"Bearer {token(api.client, 'other')}"}
    add_user(api, "dan", headers=other)
    names = lambda page: [u["username"] for u in page["items"]]  # noqa: E731

    first = api.ok("GET", f"{USERS}?page_size=2")["data"]
    assert names(first) == ["ann", "bob"]
    assert (first["total"], first["pages"], first["has_next"], first["has_previous"]) == (
        3,
        2,
        True,
        False,
    )
    second = api.ok("GET", f"{USERS}?page=2&page_size=2")["data"]
    assert names(second) == ["cat"] and second["has_previous"] and not second["has_next"]
    assert names(api.ok("GET", f"{USERS}?limit=2&offset=2")["data"]) == ["cat"]
    assert names(api.ok("GET", f"{USERS}?order=desc&page_size=2")["data"]) == ["cat", "bob"]
    assert names(api.ok("GET", f"{USERS}?order=desc&page=2&page_size=2")["data"]) == ["ann"]
    assert api.ok("GET", f"{USERS}?page=3&page_size=2")["data"]["items"] == []
    theirs = api.ok("GET", USERS, headers=other)["data"]
    assert names(theirs) == ["dan"] and theirs["total"] == 1


def test_a_disabled_user_is_still_listed_as_disabled(api):
    ann = add_user(api, "ann")
    api.ok("PATCH", f"{USERS}/{ann['id']}", json={"disabled": True})
    [listed] = api.ok("GET", USERS)["data"]["items"]
    assert listed["id"] == ann["id"] and listed["disabled"] is True


def test_the_listing_refuses_unknown_parameters(sqlite_api):
    sqlite_api.error("GET", f"{USERS}?role=admin", 422, "VALIDATION_ERROR")
    sqlite_api.error("GET", f"{USERS}?page_size=0", 422, "VALIDATION_ERROR")
    sqlite_api.error("GET", f"{USERS}?order=sideways", 422, "VALIDATION_ERROR")


# ---- update ----------------------------------------------------------------------------------


def test_an_admin_changes_email_name_role_and_password(api):
    ann = add_user(api, "ann", role="viewer")
    changed = api.ok(
        "PATCH",
        f"{USERS}/{ann['id']}",
        json={
            "email": "ann@example.org",
            "full_name": "Ann B",
            "role": "approver",
            "password": "new-password-2",
        },
    )["data"]
    assert (changed["email"], changed["full_name"], changed["role"]) == (
        "ann@example.org",
        "Ann B",
        "approver",
    )
    assert changed["version"] > ann["version"]
    api.error(
        "POST",
        "/api/auth/login",
        401,
        "AUTH_TOKEN_INVALID",
        json={"username": "ann", "password": PASSWORD},
    )
    assert login(api, "ann", "new-password-2")["user"]["email"] == "ann@example.org"
    cleared = api.ok("PATCH", f"{USERS}/{ann['id']}", json={"email": None})["data"]
    assert cleared["email"] is None and cleared["full_name"] == "Ann B"


def test_a_stale_if_match_changes_nothing(api):
    ann = add_user(api, "ann")
    api.error(
        "PATCH",
        f"{USERS}/{ann['id']}",
        409,
        "VERSION_CONFLICT",
        json={"role": "admin"},
        headers={"If-Match": str(ann["version"] + 5)},
    )
    current = api.ok(
        "PATCH",
        f"{USERS}/{ann['id']}",
        json={"role": "admin"},
        headers={"If-Match": f'"{ann["version"]}"'},
    )["data"]
    assert current["role"] == "admin"


def test_an_admin_cannot_disable_or_demote_themself_but_another_admin_can(api):
    add_user(api, "root", role="admin")
    session = login(api, "root")
    root_id = session["user"]["id"]
    mine = bearer(session["access_token"])
    for change in ({"disabled": True}, {"role": "viewer"}, {"role": "admin", "disabled": True}):
        api.error("PATCH", f"{USERS}/{root_id}", 422, "VALIDATION_ERROR", json=change, headers=mine)
    assert api.ok("GET", f"{USERS}/{root_id}")["data"]["disabled"] is False
    renamed = api.ok("PATCH", f"{USERS}/{root_id}", json={"full_name": "Root"}, headers=mine)
    assert renamed["data"]["full_name"] == "Root"
    demoted = api.ok("PATCH", f"{USERS}/{root_id}", json={"role": "viewer"})["data"]
    assert demoted["role"] == "viewer"


def test_an_update_that_changes_nothing_writes_nothing(api):
    ann = add_user(api, "ann")
    same = api.ok("PATCH", f"{USERS}/{ann['id']}", json={"role": "operator", "disabled": False})[
        "data"
    ]
    assert same["version"] == ann["version"]


# ---- profile and preferences -----------------------------------------------------------------


def test_the_profile_shows_role_permissions_and_what_the_user_has_done(api):
    mine = signed_in_user(api, "ann", role="operator")
    project = as_user(api, mine, "POST", "/api/projects/", json={"name": "Web"}).json()["data"]
    tasks = [
        as_user(api, mine, "POST", "/api/tasks/", json={"title": t, "project_id": project["id"]})
        for t in ("one", "two")
    ]
    done = as_user(
        api,
        mine,
        "PATCH",
        f"/api/tasks/{tasks[0].json()['data']['id']}",
        json={"status": "completed"},
    )
    assert done.status_code == 200, done.text
    api.task(project["id"], title="not hers")  # by the fixture's admin token
    api.project(name="Not hers either")
    position = api.position()

    response = as_user(api, mine, "GET", f"{USERS}/profile?min_position={position}")
    assert response.status_code == 200, response.text
    profile = response.json()["data"]
    assert profile["username"] == "ann" and profile["role"] == "operator"
    assert profile["permissions"] == ["operate", "read"]
    assert profile["last_login"] is not None and profile["created_at"]
    assert profile["preferences"] == {}
    assert profile["statistics"] == {
        "tasks_created": 2,
        "tasks_completed": 1,
        "projects_created": 1,
    }


def test_a_token_without_a_user_has_no_profile(sqlite_api):
    sqlite_api.error("GET", f"{USERS}/profile", 404, "USER_NOT_FOUND")
    sqlite_api.error("PUT", f"{USERS}/preferences", 404, "USER_NOT_FOUND", json={"a": 1})


def test_preferences_are_replaced_whole_and_show_in_the_profile(api):
    mine = signed_in_user(api, "ann", role="viewer")  # a viewer sets their own preferences too
    first = {"theme": "dark", "notifications": {"email": True, "push": False}}
    response = as_user(api, mine, "PUT", f"{USERS}/preferences", json=first)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["preferences"] == first and data["updated_at"].endswith("Z")
    replaced = as_user(api, mine, "PUT", f"{USERS}/preferences", json={"language": "en"})
    assert replaced.json()["data"]["preferences"] == {"language": "en"}
    profile = as_user(api, mine, "GET", f"{USERS}/profile").json()["data"]
    assert profile["preferences"] == {"language": "en"}


def test_preferences_must_be_a_bounded_json_object(sqlite_api):
    mine = signed_in_user(sqlite_api, "ann")
    for body in (["theme"], "dark", {"blob": "x" * 20_000}):
        response = as_user(sqlite_api, mine, "PUT", f"{USERS}/preferences", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    profile = as_user(sqlite_api, mine, "GET", f"{USERS}/profile").json()["data"]
    assert profile["preferences"] == {}
