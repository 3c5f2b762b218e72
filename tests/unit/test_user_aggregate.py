"""Given a user, when a command, then events or an error (domain/user.py)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.errors import DeletedError, DomainError, RuleViolationError
from domain.user import SelfLockoutError, User
from domain.values import Actor

ADMIN = Actor(id="user:admin-1", team_id="team-1", request_id="req-1")


def given(*steps: Callable[[User], Any], **fields: Any) -> User:
    defaults: dict[str, Any] = {
        "team_id": "team-1",
        "username": "ann",
        "email": "ann@example.com",
        "full_name": "Ann Example",
        "password_hash": "scrypt$hash-1",
        "role": "operator",
        "actor": ADMIN.id,
        "request_id": ADMIN.request_id,
    }
    user = User(**(defaults | fields))
    for step in steps:
        step(user)
    user.collect_events()
    return user


def then_events(user: User) -> list[Any]:
    return list(user.collect_events())


def then_refused(user: User, error: type[DomainError], command: Callable[[], Any]) -> None:
    before = copy.deepcopy(user.__dict__)
    with pytest.raises(error):
        command()
    assert user.__dict__ == before
    assert then_events(user) == []


def self_of(user: User) -> Actor:
    return Actor(id=user.actor_id, team_id=user.team_id, request_id="req-self")


def disable(user: User) -> None:
    user.disable(ADMIN)


def test_a_new_user_is_enabled_has_no_preferences_and_remembers_who_created_it() -> None:
    user = User(
        team_id="team-1",
        username="ann",
        email=None,
        full_name=None,
        password_hash="scrypt$h",
        role="viewer",
        actor=ADMIN.id,
        request_id="req-9",
    )
    [created] = then_events(user)
    assert type(created).__name__ == "Created"
    assert created.actor == ADMIN.id and created.request_id == "req-9"
    assert user.disabled is False and user.preferences == {} and user.last_login is None
    assert user.created_by == ADMIN.id and user.actor_id == f"user:{user.id}"


def test_an_update_records_only_the_fields_that_change_with_actor_and_request() -> None:
    user = given()
    user.update({"email": "ann@example.com", "full_name": "Ann B", "role": "admin"}, ADMIN)
    [updated] = then_events(user)
    assert type(updated).__name__ == "Updated"
    assert updated.changes == {"full_name": "Ann B", "role": "admin"}
    assert (updated.actor, updated.request_id) == (ADMIN.id, ADMIN.request_id)
    assert user.role == "admin" and user.full_name == "Ann B"


def test_an_update_that_changes_nothing_records_nothing() -> None:
    user = given()
    user.update({"email": "ann@example.com", "role": "operator"}, ADMIN)
    assert then_events(user) == []


def test_fields_outside_the_updatable_set_are_ignored() -> None:
    user = given()
    user.update({"team_id": "team-2", "password_hash": "stolen", "disabled": True}, ADMIN)
    assert then_events(user) == []
    assert user.team_id == "team-1" and user.password_hash == "scrypt$hash-1"


def test_disabling_then_enabling_records_both_and_repeats_change_nothing() -> None:
    user = given()
    user.disable(ADMIN)
    user.disable(ADMIN)
    assert user.disabled is True
    user.enable(ADMIN)
    user.enable(ADMIN)
    events = then_events(user)
    assert [type(e).__name__ for e in events] == ["Disabled", "Enabled"]
    assert all(e.actor == ADMIN.id and e.request_id == ADMIN.request_id for e in events)
    assert user.disabled is False


def test_a_user_cannot_disable_themself() -> None:
    user = given(role="admin")
    then_refused(user, SelfLockoutError, lambda: user.disable(self_of(user)))


def test_a_user_cannot_change_their_own_role_but_may_change_their_own_name() -> None:
    user = given(role="admin")
    me = self_of(user)
    then_refused(user, SelfLockoutError, lambda: user.update({"role": "viewer"}, me))
    user.update({"full_name": "Ann Admin", "role": "admin"}, me)
    [updated] = then_events(user)
    assert updated.changes == {"full_name": "Ann Admin"}


def test_self_lockout_is_a_rule_violation_surfacing_as_validation_error() -> None:
    assert issubclass(SelfLockoutError, RuleViolationError)
    assert SelfLockoutError("x").code == "VALIDATION_ERROR"


def test_a_password_change_replaces_the_hash_and_records_who_did_it() -> None:
    user = given()
    user.change_password("scrypt$hash-2", ADMIN)
    [changed] = then_events(user)
    assert type(changed).__name__ == "PasswordChanged"
    assert changed.actor == ADMIN.id and user.password_hash == "scrypt$hash-2"


def test_preferences_are_replaced_whole_and_the_same_ones_again_record_nothing() -> None:
    user = given(lambda u: u.set_preferences({"theme": "dark", "lang": "en"}, ADMIN))
    me = self_of(user)
    user.set_preferences({"theme": "light"}, me)
    user.set_preferences({"theme": "light"}, me)
    [changed] = then_events(user)
    assert changed.preferences == {"theme": "light"} and changed.actor == me.id
    assert user.preferences == {"theme": "light"}


def test_a_disabled_user_cannot_set_preferences_or_log_in() -> None:
    user = given(disable)
    then_refused(user, DeletedError, lambda: user.set_preferences({"a": 1}, ADMIN))
    then_refused(user, DeletedError, lambda: user.record_login(datetime.now(UTC), ADMIN))


def test_a_login_records_its_time() -> None:
    user = given()
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    user.record_login(moment, self_of(user))
    [logged_in] = then_events(user)
    assert logged_in.at == moment and user.last_login == moment


def test_replaying_the_events_rebuilds_the_same_user() -> None:
    user = User(
        team_id="team-1",
        username="ann",
        email=None,
        full_name=None,
        password_hash="h1",
        role="viewer",
        actor=ADMIN.id,
        request_id="r",
    )
    user.update({"role": "approver"}, ADMIN)
    user.set_preferences({"theme": "dark"}, ADMIN)
    user.disable(ADMIN)
    events = user.collect_events()
    rebuilt: Any = None
    for e in events:
        rebuilt = e.mutate(rebuilt)
    assert rebuilt.__dict__ == user.__dict__
