"""Authentication over HTTP: login, rotating refresh with reuse detection, logout, me, admin-key
token minting, disabled users and role changes taking effect at once, and forged JWTs."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from starlette.testclient import TestClient

from application.users import bootstrap_admin
from infrastructure.settings import Settings
from infrastructure.tokens import load_secret
from interfaces.http.app import create_app
from interfaces.services import migrate
from tests.e2e.conftest import ADMIN_KEY, Api
from tests.e2e.test_users_api import PASSWORD, USERS, add_user, as_user, login
from tests.unit.test_tokens import HS256, forgeries, signed, valid_claims

ME = "/api/auth/me"
TOKEN_CLAIMS = {"sub": "token:forger", "typ": "access", "team": "default", "role": "admin"}
ATTACKS = sorted(forgeries(b"k" * 32, TOKEN_CLAIMS))


def refresh(api: Api, refresh_token: str):  # type: ignore[no-untyped-def]
    return api.post("/api/auth/refresh", json={"refresh_token": refresh_token})


# ---- login -----------------------------------------------------------------------------------


def test_login_returns_a_15_minute_access_token_and_a_refresh_token(api):
    ann = add_user(api, "ann", role="approver", email="ann@example.com")
    session = login(api, "ann")
    assert session["token_type"] == "bearer" and session["expires_in"] == 900
    assert session["user"] == {"id": ann["id"], "username": "ann", "email": "ann@example.com"}
    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    assert claims["sub"] == f"user:{ann['id']}" and claims["exp"] - claims["iat"] == 900
    family, _, secret = session["refresh_token"].partition(".")
    assert len(family) == 32 and len(secret) >= 40

    me = as_user(api, session["access_token"], "GET", ME)
    assert me.status_code == 200, me.text
    data = me.json()["data"]
    assert (data["kind"], data["role"], data["team_id"]) == ("user", "approver", "default")
    assert data["actor_id"] == f"user:{ann['id']}" and data["user"]["username"] == "ann"
    assert data["user"]["last_login"] is not None


def test_a_wrong_password_and_an_unknown_user_get_the_same_401(sqlite_api):
    add_user(sqlite_api, "ann")
    wrong = sqlite_api.error(
        "POST",
        "/api/auth/login",
        401,
        "AUTH_TOKEN_INVALID",
        json={"username": "ann", "password": "not-the-password"},
    )
    unknown = sqlite_api.error(
        "POST",
        "/api/auth/login",
        401,
        "AUTH_TOKEN_INVALID",
        json={"username": "nobody", "password": PASSWORD},
    )
    assert wrong["message"] == unknown["message"] == "wrong username or password"


def test_usernames_log_in_whatever_their_case(sqlite_api):
    add_user(sqlite_api, "Ann")
    assert login(sqlite_api, "ann")["user"]["username"] == "Ann"


def test_the_bootstrap_admin_logs_in_with_the_configured_password(api):
    services = api.role.services
    assert bootstrap_admin(services.store, services.hasher, "bootstrap-secret-1") is None
    assert bootstrap_admin(services.store, services.hasher, "other-password-2") is None
    session = login(api, "admin", "bootstrap-secret-1")
    me = as_user(api, session["access_token"], "GET", ME).json()["data"]
    assert (me["role"], me["team_id"], me["kind"]) == ("admin", "default", "user")
    users = as_user(api, session["access_token"], "GET", USERS).json()["data"]
    assert [u["username"] for u in users["items"]] == ["admin"]


def test_the_bootstrap_admin_gets_a_generated_password_shown_once(sqlite_api):
    services = sqlite_api.role.services
    generated = bootstrap_admin(services.store, services.hasher, None)
    assert generated and len(generated) >= 20
    assert bootstrap_admin(services.store, services.hasher, None) is None
    assert login(sqlite_api, "admin", generated)["user"]["username"] == "admin"


# ---- refresh, logout -------------------------------------------------------------------------


def test_refresh_rotates_and_the_old_refresh_token_then_fails(api):
    add_user(api, "ann")
    first = login(api, "ann")
    response = refresh(api, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()["data"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["refresh_token"].partition(".")[0] == first["refresh_token"].partition(".")[0]
    assert as_user(api, second["access_token"], "GET", ME).status_code == 200
    third = refresh(api, second["refresh_token"])  # the old one's grace ends with this use
    assert third.status_code == 200, third.text
    api.error(
        "POST",
        "/api/auth/refresh",
        401,
        "AUTH_TOKEN_INVALID",
        json={"refresh_token": first["refresh_token"]},
    )


def test_a_refresh_token_sent_again_at_once_gets_the_same_pair(api):
    """TASKWARDEN_REFRESH_REUSE_GRACE_SECONDS (5): two tabs refreshing with one token."""
    add_user(api, "ann")
    used = login(api, "ann")["refresh_token"]
    first, again = refresh(api, used), refresh(api, used)
    assert first.status_code == again.status_code == 200, again.text
    assert again.json()["data"] == first.json()["data"]
    pair = first.json()["data"]
    assert as_user(api, pair["access_token"], "GET", ME).status_code == 200
    assert refresh(api, pair["refresh_token"]).status_code == 200  # the session goes on


def test_presenting_a_used_refresh_token_revokes_its_whole_family(api):
    add_user(api, "ann")
    stolen = login(api, "ann")["refresh_token"]
    newer = refresh(api, stolen).json()["data"]["refresh_token"]
    newest = refresh(api, newer).json()["data"]["refresh_token"]  # ``stolen`` is two uses back
    elsewhere = login(api, "ann")["refresh_token"]  # another session: another family

    replay = refresh(api, stolen)
    assert replay.status_code == 401 and "revoked" in replay.json()["error"]["message"]
    after = refresh(api, newest)
    assert after.status_code == 401, after.text
    assert after.json()["error"]["code"] == "AUTH_TOKEN_INVALID"
    assert refresh(api, elsewhere).status_code == 200


def test_logout_revokes_the_session(api):
    add_user(api, "ann")
    session = login(api, "ann")
    out = api.ok("POST", "/api/auth/logout", json={"refresh_token": session["refresh_token"]})
    assert out["data"] == {"message": "Logged out"}
    assert refresh(api, session["refresh_token"]).status_code == 401


@pytest.mark.parametrize(
    "presented",
    ["nothing", "nothing.here", "00000000000000000000000000000000.secret", ".", "a" * 512],
)
def test_made_up_refresh_tokens_are_refused(sqlite_api, presented):
    for path in ("/api/auth/refresh", "/api/auth/logout"):
        sqlite_api.error("POST", path, 401, "AUTH_TOKEN_INVALID", json={"refresh_token": presented})


def test_a_refresh_token_is_not_an_access_token(sqlite_api):
    add_user(sqlite_api, "ann")
    session = login(sqlite_api, "ann")
    response = as_user(sqlite_api, session["refresh_token"], "GET", ME)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AUTH_TOKEN_INVALID"


# ---- disabled users and role changes ---------------------------------------------------------


def test_a_disabled_user_loses_access_at_once_and_cannot_refresh_or_log_in(api):
    ann = add_user(api, "ann")
    session = login(api, "ann")
    assert as_user(api, session["access_token"], "GET", ME).status_code == 200
    api.ok("PATCH", f"{USERS}/{ann['id']}", json={"disabled": True})

    for method, path in (("GET", ME), ("GET", "/api/tasks/"), ("GET", f"{USERS}/profile")):
        response = as_user(api, session["access_token"], method, path)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "AUTH_ACCOUNT_DISABLED"
    api.error(
        "POST",
        "/api/auth/refresh",
        401,
        "AUTH_ACCOUNT_DISABLED",
        json={"refresh_token": session["refresh_token"]},
    )
    api.error(
        "POST",
        "/api/auth/login",
        401,
        "AUTH_ACCOUNT_DISABLED",
        json={"username": "ann", "password": PASSWORD},
    )
    api.ok("PATCH", f"{USERS}/{ann['id']}", json={"disabled": False})
    assert as_user(api, session["access_token"], "GET", ME).status_code == 200


def test_a_role_change_takes_effect_on_the_next_request(api):
    ann = add_user(api, "ann", role="viewer")
    mine = login(api, "ann")["access_token"]

    def create_project() -> int:
        return as_user(api, mine, "POST", "/api/projects/", json={"name": "Web"}).status_code

    assert create_project() == 403
    api.ok("PATCH", f"{USERS}/{ann['id']}", json={"role": "operator"})
    assert create_project() == 201
    assert as_user(api, mine, "GET", USERS).status_code == 403
    api.ok("PATCH", f"{USERS}/{ann['id']}", json={"role": "admin"})
    assert as_user(api, mine, "GET", USERS).status_code == 200
    api.ok("PATCH", f"{USERS}/{ann['id']}", json={"role": "viewer"})
    assert create_project() == 403
    assert as_user(api, mine, "GET", ME).json()["data"]["role"] == "viewer"


# ---- me, admin-key tokens --------------------------------------------------------------------


def test_me_describes_a_minted_token(sqlite_api):
    me = sqlite_api.ok("GET", ME)["data"]
    assert (me["kind"], me["team_id"], me["role"], me["user"]) == (
        "token",
        "default",
        "admin",
        None,
    )
    assert me["actor_id"].startswith("token:")


def test_me_without_credentials_is_401(sqlite_api):
    response = sqlite_api.get(ME, headers={"Authorization": ""})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AUTH_TOKEN_MISSING"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_admin_key_mints_a_token_for_a_team_and_role(sqlite_api):
    response = sqlite_api.post(
        "/api/auth/token",
        json={"team_id": "red", "role": "viewer"},
        headers={"X-Admin-Key": ADMIN_KEY},
    )
    assert response.status_code == 201, response.text
    minted = response.json()["data"]
    assert (minted["team_id"], minted["role"], minted["expires_in"]) == ("red", "viewer", 900)
    me = as_user(sqlite_api, minted["access_token"], "GET", ME).json()["data"]
    assert (me["team_id"], me["role"]) == ("red", "viewer")
    denied = as_user(
        sqlite_api, minted["access_token"], "POST", "/api/projects/", json={"name": "x"}
    )
    assert denied.status_code == 403


@pytest.mark.parametrize("presented", [None, "", "wrong", ADMIN_KEY + "x", ADMIN_KEY[:-1]])
def test_a_wrong_or_missing_admin_key_is_401(sqlite_api, presented):
    headers = {} if presented is None else {"X-Admin-Key": presented}
    sqlite_api.error(
        "POST",
        "/api/auth/token",
        401,
        "AUTH_TOKEN_INVALID",
        json={"team_id": "default", "role": "admin"},
        headers=headers,
    )


def test_minting_without_a_configured_admin_key_is_503(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data", admin_key=None)
    migrate(settings)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for presented in (ADMIN_KEY, ""):
            response = client.post(
                "/api/auth/token",
                json={"team_id": "default", "role": "admin"},
                headers={"X-Admin-Key": presented},
            )
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "ADMIN_KEY_NOT_CONFIGURED"


# ---- forged JWTs -----------------------------------------------------------------------------


def app_secret(api: Api) -> bytes:
    settings = api.client.app.state.settings
    return load_secret(settings.jwt_secret, settings.data_dir)


def test_a_token_built_by_hand_with_the_apps_secret_is_accepted(sqlite_api):
    """The control for the attacks: the same forging helpers, used honestly, get in."""
    honest = signed(app_secret(sqlite_api), HS256, valid_claims(TOKEN_CLAIMS))
    response = as_user(sqlite_api, honest, "GET", ME)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["actor_id"] == "token:forger"


@pytest.mark.parametrize("attack", ATTACKS)
def test_forged_tokens_are_refused_over_http(sqlite_api, attack):
    forged = forgeries(app_secret(sqlite_api), TOKEN_CLAIMS)[attack]
    for method, path in (("GET", ME), ("GET", USERS), ("POST", "/api/projects/")):
        response = as_user(sqlite_api, forged, method, path, json={"name": "x"})
        assert response.status_code == 401, (attack, path, response.text)
        assert response.json()["error"]["code"] == "AUTH_TOKEN_INVALID"


def test_forged_tokens_naming_a_real_user_are_refused(api):
    ann = add_user(api, "ann", role="admin")
    claims = {"sub": f"user:{ann['id']}", "typ": "access"}
    for attack, forged in forgeries(app_secret(api), claims).items():
        response = as_user(api, forged, "GET", ME)
        assert response.status_code == 401, (attack, response.text)


def test_a_token_that_is_not_an_access_token_is_refused(sqlite_api):
    secret = app_secret(sqlite_api)
    for typ in ("refresh", None):
        claims = {k: v for k, v in {**TOKEN_CLAIMS, "typ": typ}.items() if v is not None}
        response = as_user(sqlite_api, signed(secret, HS256, valid_claims(claims)), "GET", ME)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "AUTH_TOKEN_INVALID"


def test_a_token_for_a_role_that_does_not_exist_is_refused(sqlite_api):
    claims = {**TOKEN_CLAIMS, "role": "superuser"}
    response = as_user(
        sqlite_api, signed(app_secret(sqlite_api), HS256, valid_claims(claims)), "GET", ME
    )
    assert response.status_code == 401


def test_a_bearer_with_a_stray_prefix_is_refused(sqlite_api):
    honest = signed(app_secret(sqlite_api), HS256, valid_claims(TOKEN_CLAIMS))
    for header in (f"Token {honest}", f"Bearer  {honest}x", f"{honest}"):
        response = sqlite_api.get(ME, headers={"Authorization": header})
        assert response.status_code == 401, header
