"""The User aggregate: a person who signs in, with a role in one team."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import event

from domain.errors import DeletedError, RuleViolationError
from domain.place import Placed
from domain.values import Actor

UPDATABLE = frozenset({"email", "full_name", "role"})


class SelfLockoutError(RuleViolationError):
    """A user may not disable themself or change their own role (an admin would lock the team
    out of administration by accident)."""


class User(Placed):
    @event("Created")
    def __init__(
        self,
        *,
        team_id: str,
        username: str,
        email: str | None,
        full_name: str | None,
        password_hash: str,
        role: str,
        actor: str,
        request_id: str,
    ) -> None:
        self.team_id = team_id
        self.username = username
        self.email = email
        self.full_name = full_name
        self.password_hash = password_hash
        self.role = role
        self.disabled = False
        self.preferences: dict[str, Any] = {}
        self.last_login: Any = None
        self.created_by = actor

    @property
    def actor_id(self) -> str:
        """How the events this user causes name them."""
        return f"user:{self.id}"

    def _require_enabled(self) -> None:
        if self.disabled:
            raise DeletedError("user is disabled", user_id=str(self.id))

    def update(self, changes: dict[str, Any], by: Actor) -> None:
        effective = {k: v for k, v in changes.items() if k in UPDATABLE and getattr(self, k) != v}
        if "role" in effective and by.id == self.actor_id:
            raise SelfLockoutError("you cannot change your own role", field="role")
        if effective:
            self._updated(changes=effective, actor=by.id, request_id=by.request_id)

    @event("Updated")
    def _updated(self, changes: dict[str, Any], actor: str, request_id: str) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    def change_password(self, password_hash: str, by: Actor) -> None:
        self._password_changed(password_hash=password_hash, actor=by.id, request_id=by.request_id)

    @event("PasswordChanged")
    def _password_changed(self, password_hash: str, actor: str, request_id: str) -> None:
        self.password_hash = password_hash

    def disable(self, by: Actor) -> None:
        if by.id == self.actor_id:
            raise SelfLockoutError("you cannot disable yourself", field="disabled")
        if not self.disabled:
            self._disabled(actor=by.id, request_id=by.request_id)

    @event("Disabled")
    def _disabled(self, actor: str, request_id: str) -> None:
        self.disabled = True

    def enable(self, by: Actor) -> None:
        if self.disabled:
            self._enabled(actor=by.id, request_id=by.request_id)

    @event("Enabled")
    def _enabled(self, actor: str, request_id: str) -> None:
        self.disabled = False

    def set_preferences(self, preferences: dict[str, Any], by: Actor) -> None:
        self._require_enabled()
        if preferences != self.preferences:
            self._preferences_set(preferences=preferences, actor=by.id, request_id=by.request_id)

    @event("PreferencesSet")
    def _preferences_set(self, preferences: dict[str, Any], actor: str, request_id: str) -> None:
        self.preferences = dict(preferences)

    def record_login(self, at: Any, by: Actor) -> None:
        self._require_enabled()
        self._logged_in(at=at, actor=by.id, request_id=by.request_id)

    @event("LoggedIn")
    def _logged_in(self, at: Any, actor: str, request_id: str) -> None:
        self.last_login = at
