"""Rate limits over HTTP, on an app with low limits, on the embedded store and on Postgres.

The test client connects from 127.0.0.1, a trusted proxy here, so ``X-Forwarded-For`` picks the
client address of each request.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from infrastructure.rate_limit import MemoryRateLimiter
from infrastructure.rate_limit_postgres import PostgresRateLimiter
from infrastructure.settings import Settings
from interfaces.http.app import create_app
from interfaces.http.role import api_role
from interfaces.services import migrate
from tests.e2e.conftest import ADMIN_KEY

PASSWORD = "right-password-123"
HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-ratelimit-window")
Limited = Callable[..., AbstractContextManager[TestClient]]


@pytest.fixture
def limited(tmp_path: Path, database_url: str | None) -> Limited:
    """Builds an app with the given limits (anything not given: far out of reach)."""

    @contextmanager
    def build(**overrides: Any) -> Iterator[TestClient]:
        fields: dict[str, Any] = {
            "rate_limit_anonymous": 1000,
            "rate_limit_user": 1000,
            "rate_limit_login": 1000,
            "trusted_proxies": ("127.0.0.1",),
        }
        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=database_url,
            admin_key=ADMIN_KEY,
            admin_password=PASSWORD,
            **(fields | overrides),
        )
        migrate(settings)
        app = create_app(settings, bootstrap=True)
        with TestClient(app, raise_server_exceptions=False, client=("127.0.0.1", 5000)) as client:
            stopped(api_role(app).services, client, settings)
            yield client

    return build


def stopped(services: Any, client: TestClient, settings: Settings) -> None:
    """The app's limiter, of the same kind, with its clock stopped at one moment: a budget
    refills nothing between a test's requests however slowly a loaded machine serves them
    (50 a 30 s is one request back every 0.6 s)."""
    running = services.rate_limiter
    if running is None:
        return
    now = time.time()
    if isinstance(running, PostgresRateLimiter):
        services.rate_limiter = PostgresRateLimiter(str(settings.database_url), clock=lambda: now)
    else:
        services.rate_limiter = MemoryRateLimiter(clock=lambda: now)
    client.portal.call(running.close)


def at(ip: str, **headers: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip, **headers}


def mint(client: TestClient, team: str = "default") -> dict[str, str]:
    """A token's headers; minted from an address of its own, not to spend the caller's budget."""
    response = client.post(
        "/api/auth/token",
        json={"team_id": team, "role": "admin"},
        headers=at("192.0.2.250", **{"X-Admin-Key": ADMIN_KEY}),
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['data']['access_token']}"}


def log_in(client: TestClient, ip: str, username: str, password: str = "wrong-password") -> int:
    body = {"username": username, "password": password}
    return client.post("/api/auth/login", json=body, headers=at(ip)).status_code


def test_every_response_carries_the_rate_limit_headers(limited: Limited) -> None:
    with limited(rate_limit_anonymous=50, rate_limit_user=70, rate_limit_window=30) as client:
        token = mint(client)
        answers = {
            "public": client.get("/api/health/", headers=at("198.51.100.1")),
            "unknown path": client.get("/api/nowhere", headers=at("198.51.100.1")),
            "no token": client.get("/api/tasks/", headers=at("198.51.100.1")),
            "signed in": client.get("/api/tasks/", headers=at("198.51.100.1", **token)),
            "invalid body": client.post("/api/projects/", json={}, headers=token),
        }
        for name, response in answers.items():
            assert all(h in response.headers for h in HEADERS), name
            assert response.headers["x-ratelimit-window"] == "30", name
            assert int(response.headers["x-ratelimit-reset"]) > 1_700_000_000, name
        assert [answers[n].status_code for n in answers] == [200, 404, 401, 200, 422]
        assert answers["public"].headers["x-ratelimit-limit"] == "50"
        assert answers["signed in"].headers["x-ratelimit-limit"] == "70"
        assert answers["no token"].headers["x-ratelimit-remaining"] == "47"


def test_the_request_beyond_the_limit_is_429_in_the_envelope(limited: Limited) -> None:
    with limited(rate_limit_anonymous=3) as client:
        statuses = [client.get("/api/health/", headers=at("198.51.100.1")) for _ in range(3)]
        assert [r.status_code for r in statuses] == [200, 200, 200]
        assert [r.headers["x-ratelimit-remaining"] for r in statuses] == ["2", "1", "0"]

        refused = client.get("/api/health/", headers=at("198.51.100.1"))

        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 20  # one request every 60 / 3 seconds
        assert refused.headers["x-ratelimit-remaining"] == "0"
        body = refused.json()
        assert body["data"] is None
        assert body["error"]["code"] == "RATE_LIMIT_EXCEEDED"
        assert body["meta"]["request_id"] == refused.headers["x-request-id"]
        details = body["error"]["details"]
        assert (details["limit"], details["window"]) == (3, 60)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", details["reset_at"])
        assert client.get("/api/health/", headers=at("198.51.100.2")).status_code == 200


def test_each_principal_has_its_own_budget(limited: Limited) -> None:
    with limited(rate_limit_user=3, rate_limit_anonymous=3) as client:
        alice, bob = mint(client), mint(client)
        assert [client.get("/api/tasks/", headers=alice).status_code for _ in range(4)] == [
            200,
            200,
            200,
            429,
        ]
        assert client.get("/api/tasks/", headers=bob).status_code == 200
        assert client.get("/api/health/").status_code == 200  # the IP's budget is its own


def test_a_principal_is_limited_from_any_address(limited: Limited) -> None:
    with limited(rate_limit_user=2) as client:
        token = mint(client)
        for ip in ("198.51.100.1", "198.51.100.2"):
            assert client.get("/api/tasks/", headers=at(ip, **token)).status_code == 200
        assert client.get("/api/tasks/", headers=at("198.51.100.3", **token)).status_code == 429


def test_requests_with_bad_credentials_spend_the_client_address_budget(limited: Limited) -> None:
    with limited(rate_limit_anonymous=3) as client:
        junk = at("198.51.100.1", Authorization="Bearer not-a-token")
        statuses = [client.get("/api/tasks/", headers=junk).status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        assert client.get("/api/health/", headers=at("198.51.100.1")).status_code == 429


def test_login_guessing_is_stopped_per_username_whatever_the_address(limited: Limited) -> None:
    with limited(rate_limit_login=3) as client:
        ips = [f"198.51.100.{n}" for n in range(1, 5)]
        assert [log_in(client, ip, "admin") for ip in ips] == [401, 401, 401, 429]
        assert log_in(client, "198.51.100.9", "admin", PASSWORD) == 429
        assert log_in(client, "198.51.100.9", "someone-else") == 401


def test_login_guessing_is_stopped_per_address_whatever_the_username(limited: Limited) -> None:
    with limited(rate_limit_login=3) as client:
        names = ["alice", "bob", "carol", "dave"]
        assert [log_in(client, "198.51.100.1", name) for name in names] == [401, 401, 401, 429]
        assert log_in(client, "198.51.100.2", "admin", PASSWORD) == 200


def test_a_refused_login_says_when_to_retry(limited: Limited) -> None:
    with limited(rate_limit_login=2, rate_limit_window=10) as client:
        log_in(client, "198.51.100.1", "admin")
        log_in(client, "198.51.100.1", "admin")
        refused = client.post(
            "/api/auth/login",
            json={"username": "admin", "password": "x"},
            headers=at("198.51.100.1"),
        )
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 5
        assert refused.json()["error"]["details"]["limit"] == 2
        assert refused.headers["x-ratelimit-limit"] == "2"


def test_x_forwarded_for_is_ignored_from_a_peer_not_trusted(limited: Limited) -> None:
    with limited(rate_limit_anonymous=2, trusted_proxies=()) as client:
        statuses = [
            client.get("/api/health/", headers=at(f"198.51.100.{n}")).status_code
            for n in range(1, 4)
        ]
        assert statuses == [200, 200, 429]


def test_the_probes_are_not_limited(limited: Limited) -> None:
    with limited(rate_limit_anonymous=1) as client:
        for path in ("/health", "/health", "/ready", "/metrics"):
            response = client.get(path)
            assert response.status_code == 200
            assert "x-ratelimit-limit" not in response.headers


def test_rate_limits_can_be_turned_off(limited: Limited) -> None:
    with limited(rate_limit_anonymous=1, rate_limit_enabled=False) as client:
        responses = [client.get("/api/health/") for _ in range(3)]
        assert [r.status_code for r in responses] == [200, 200, 200]
        assert "x-ratelimit-limit" not in responses[-1].headers
