"""Credentials as aggregates: API keys, and refresh-token families that rotate on every use.

A refresh token is ``<family id>.<secret>``; the family keeps the hash of the one secret that may
be used next. Presenting any earlier secret of the family is a replay: the whole family is
revoked, so a stolen token dies with the one that was rotated past it. The family also keeps the
hash of the secret used last and when it was used, so that a client that sent it twice at once
can be told apart for a few seconds (``application.auth.refresh``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import event

from domain.place import Placed
from domain.values import Actor


class ApiKey(Placed):
    """A ``tw_`` key for programs: scoped to a team and a role, optionally to one project."""

    @event("Created")
    def __init__(
        self,
        *,
        team_id: str,
        name: str,
        role: str,
        project_id: str | None,
        secret_hash: str,
        prefix: str,
        expires_at: datetime | None,
        actor: str,
        request_id: str,
    ) -> None:
        self.team_id = team_id
        self.name = name
        self.role = role
        self.project_id = project_id
        self.secret_hash = secret_hash
        self.prefix = prefix
        self.expires_at = expires_at
        self.created_by = actor
        self.revoked = False
        self.last_used_at: datetime | None = None

    def usable(self, now: datetime) -> bool:
        return not self.revoked and (self.expires_at is None or now < self.expires_at)

    def record_use(self, at: datetime) -> None:
        self._used(at=at)

    @event("Used")
    def _used(self, at: datetime) -> None:
        self.last_used_at = at

    def revoke(self, by: Actor) -> None:
        if not self.revoked:
            self._revoked(actor=by.id, request_id=by.request_id)

    @event("Revoked")
    def _revoked(self, actor: str, request_id: str) -> None:
        self.revoked = True


class RefreshFamily(Placed):
    """Every refresh token issued from one login."""

    @event("Started")
    def __init__(
        self, *, user_id: str, team_id: str, secret_hash: str, expires_at: datetime
    ) -> None:
        self.user_id = user_id
        self.team_id = team_id
        self.secret_hash = secret_hash
        self.expires_at = expires_at
        self.revoked = False
        self.revoked_reason: str | None = None
        self.previous_secret_hash: str | None = None  # of the secret used last
        self.rotated_at: datetime | None = None  # when it was used

    class Rotated(Placed.Event):
        """Version 2 records ``at``, when the rotation was decided (None in older events);
        version 3 its team (``domain.place``)."""

        class_version = 3
        secret_hash: str
        expires_at: datetime
        at: datetime | None

        @classmethod
        def upcast_v1_v2(cls, state: dict[str, Any]) -> None:
            state["at"] = None

        @classmethod
        def upcast_v2_v3(cls, state: dict[str, Any]) -> None:
            cls.unplaced(state)

    def rotate(self, secret_hash: str, expires_at: datetime, at: datetime) -> None:
        self._rotated(secret_hash=secret_hash, expires_at=expires_at, at=at)

    @event(Rotated)
    def _rotated(self, secret_hash: str, expires_at: datetime, at: datetime | None) -> None:
        self.previous_secret_hash = self.secret_hash
        self.secret_hash = secret_hash
        self.expires_at = expires_at
        self.rotated_at = at

    def revoke(self, reason: str) -> None:
        if not self.revoked:
            self._revoked(reason=reason)

    @event("Revoked")
    def _revoked(self, reason: str) -> None:
        self.revoked = True
        self.revoked_reason = reason
