"""Refresh tokens sent twice: the same pair within the grace, a revoked session outside it (in
memory; two refreshes at once on SQLite and Postgres), on a clock the test moves (no test waits
for the grace)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import pytest

from application.auth import authenticate, login, logout, refresh
from application.commands import CreateUser
from application.errors import AuthenticationError
from application.store import Store
from application.users import create_user
from domain.credentials import RefreshFamily
from domain.values import Actor
from infrastructure.passwords import ScryptHasher
from infrastructure.settings import Settings
from infrastructure.tokens import JwtCodec
from tests.clock import ManualClock
from tests.stores import on_databases, open_store

ADMIN = Actor(id="admin", team_id="team-a", request_id="req-admin")
CODEC = JwtCodec(b"k" * 32)
HASHER = ScryptHasher(n=16, r=1, p=1)  # cheap: these tests are not about hashing
TTL = 3600
GRACE = 5.0


@pytest.fixture
def store(event_store: dict[str, Any], tmp_path: Path) -> Iterator[Store]:
    clock = ManualClock()  # starts now: the access tokens are checked against the real clock
    store = open_store(Settings(data_dir=tmp_path, **event_store), clock=clock)
    create_user(store, HASHER, CreateUser(username="ann", password="secret-pw"), "team-a", ADMIN)
    yield store
    store.close()


def sign_in(store: Store) -> str:
    return str(login(store, CODEC, HASHER, "ann", "secret-pw", TTL, "req-login")["refresh_token"])


def refresh_at(store: Store, token: str, seconds: float, grace: float = GRACE) -> dict[str, Any]:
    """A refresh ``seconds`` after the test began (when it signed in)."""
    clock = cast(ManualClock, store.clock)
    clock.set(clock.start + timedelta(seconds=seconds))
    return refresh(store, CODEC, token, TTL, grace_seconds=grace)


def family_of(store: Store, token: str) -> RefreshFamily:
    return store.get(RefreshFamily, UUID(token.partition(".")[0]))


def refused(store: Store, token: str, seconds: float, grace: float = GRACE) -> str:
    with pytest.raises(AuthenticationError) as raised:
        refresh_at(store, token, seconds, grace)
    assert raised.value.code == "AUTH_TOKEN_INVALID"
    return str(raised.value)


@on_databases
def test_two_refreshes_of_one_token_at_once_get_the_same_pair_and_the_session_goes_on(store):
    used = sign_in(store)
    answers: list[dict[str, Any]] = []
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def tab() -> None:
        start.wait()
        try:
            answers.append(refresh_at(store, used, 1.0))
        except BaseException as error:  # noqa: BLE001 - reported by the test
            failures.append(error)

    threads = [threading.Thread(target=tab) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert failures == []
    assert len(answers) == 4 and all(a == answers[0] for a in answers)
    family = family_of(store, used)
    assert family.version == 2 and not family.revoked  # one rotation, not four
    pair = answers[0]
    assert authenticate(store, CODEC, pair["access_token"]).user_id == family.user_id
    assert refresh_at(store, pair["refresh_token"], 2.0)["refresh_token"] != pair["refresh_token"]


def test_a_used_token_sent_again_within_the_grace_gets_the_pair_of_its_first_use(store):
    used = sign_in(store)
    first = refresh_at(store, used, 0.0)
    assert refresh_at(store, used, 1.0) == first
    assert refresh_at(store, used, GRACE) == first  # the grace's last instant still counts
    assert not family_of(store, used).revoked


def test_a_used_token_sent_again_after_the_grace_revokes_the_session(store):
    used = sign_in(store)
    newer = refresh_at(store, used, 0.0)["refresh_token"]
    assert "already used" in refused(store, used, GRACE + 0.001)
    assert family_of(store, used).revoked_reason == "reuse"
    assert "revoked" in refused(store, newer, GRACE + 0.002)  # the winner's token too


def test_the_grace_ends_once_the_new_token_is_used(store):
    used = sign_in(store)
    newer = refresh_at(store, used, 0.0)["refresh_token"]
    newest = refresh_at(store, newer, 1.0)["refresh_token"]
    assert "already used" in refused(store, used, 2.0)
    assert "revoked" in refused(store, newest, 2.0)


def test_the_grace_does_not_apply_after_logout(store):
    used = sign_in(store)
    newer = refresh_at(store, used, 0.0)["refresh_token"]
    logout(store, newer)
    assert "revoked" in refused(store, used, 1.0)
    assert family_of(store, used).revoked_reason == "logout"


def test_without_a_grace_a_token_sent_again_revokes_the_session_at_once(store):
    used = sign_in(store)
    refresh_at(store, used, 0.0, grace=0)
    assert "already used" in refused(store, used, 0.0, grace=0)


def test_no_refresh_secret_enters_the_event_store(store):
    used = sign_in(store)
    pairs = [refresh_at(store, used, 0.0), refresh_at(store, used, 1.0)]
    tokens = [used, *(p["refresh_token"] for p in pairs)]
    secrets = {t.partition(".")[2] for t in tokens}
    stored = b"".join(n.state for n in store.notifications(0, 10_000))
    assert not [s for s in secrets if s.encode() in stored]
