"""A team's webhook: where its events are POSTed, which of them, and the secret that signs them.
Each delivery to it is its own aggregate (``domain/webhook_delivery.py``).

A webhook keeps its signing secret itself: signing needs the secret, not a digest of it. It is
stored in the event store like any field (docs/security.md, "Webhooks"), and no answer shows it
but the ones that create or rotate it. After a rotation the previous secret keeps signing for
``ROTATION_GRACE`` beside the new one.

The aggregate is named ``Webhook`` (not ``WebhookEndpoint``) so that its public event names read
``webhook.disabled``, ``webhook.secret_rotated`` (domain/naming.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from eventsourcing.domain import event

from domain.errors import DeletedError, RuleViolationError
from domain.place import Placed
from domain.values import Actor

FAILING_LIMIT = timedelta(days=5)  # failing this long (no success since) disables the webhook
ROTATION_GRACE = timedelta(hours=24)  # the previous secret keeps signing this long
PATTERN = re.compile(r"^(\*|[a-z][a-z_]*\.(\*|[a-z][a-z_]*))$")

SYSTEM = "system:webhooks"  # the actor of what the sender decides (disabling, recovery)


def matches(patterns: Sequence[str], name: str) -> bool:
    """``*`` matches every name, ``task.*`` every task event, anything else itself only."""
    return any(p in ("*", name) or (p.endswith(".*") and name.startswith(p[:-1])) for p in patterns)


def check_patterns(patterns: Sequence[str]) -> list[str]:
    wrong = [p for p in patterns if not PATTERN.match(p)]
    if wrong:
        raise RuleViolationError(
            "events are names (task.completed), kinds (task.*) or *", field="events", values=wrong
        )
    if not patterns:
        raise RuleViolationError("name at least one event (* for all)", field="events")
    return list(dict.fromkeys(patterns))


class Webhook(Placed):
    """Where a team's events are POSTed, which of them, and the secret that signs them."""

    @event("Created")
    def __init__(
        self,
        *,
        team_id: str,
        url: str,
        events: list[str],
        description: str,
        enabled: bool,
        secret: str,
        starts_after: int,
        actor: str,
        request_id: str,
    ) -> None:
        self.team_id = team_id
        self.url = url
        self.events = list(events)
        self.description = description
        self.enabled = enabled
        self.secret = secret
        self.starts_after = starts_after  # events at or before this position are not for it
        self.created_by = actor
        self.previous_secret: str | None = None
        self.previous_expires_at: datetime | None = None
        self.disabled_reason: str | None = None if enabled else "disabled by an administrator"
        self.failing_since: datetime | None = None
        self.deleted = False

    # ---- reading -------------------------------------------------------------------------

    def wants(self, position: int, names: Sequence[str]) -> list[str]:
        """The names of an event (its own, then seed 000's) this webhook subscribes to; none
        when it is disabled or deleted, or the event came before the webhook."""
        if not self.enabled or self.deleted or position <= self.starts_after:
            return []
        return [n for n in names if matches(self.events, n)]

    def signing_secrets(self, now: datetime) -> list[str]:
        """The current secret, and the previous one while its grace lasts."""
        previous = self.previous_secret
        expires = self.previous_expires_at
        if previous is not None and expires is not None and now < expires:
            return [self.secret, previous]
        return [self.secret]

    def _require_live(self) -> None:
        if self.deleted:
            raise DeletedError("webhook was deleted", webhook_id=str(self.id))

    # ---- what an administrator does ------------------------------------------------------

    def update(self, changes: dict[str, Any], by: Actor) -> None:
        """``url``, ``events``, ``description``; ``enabled`` goes through enable/disable."""
        self._require_live()
        effective = {
            k: v
            for k, v in changes.items()
            if k in ("url", "events", "description") and getattr(self, k) != v
        }
        if effective:
            self._updated(changes=effective, actor=by.id, request_id=by.request_id)

    @event("Updated")
    def _updated(self, changes: dict[str, Any], actor: str, request_id: str) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    def enable(self, by: Actor) -> None:
        """Deliveries resume (held ones first); the failing streak starts over."""
        self._require_live()
        if not self.enabled:
            self._enabled(actor=by.id, request_id=by.request_id)

    @event("Enabled")
    def _enabled(self, actor: str, request_id: str) -> None:
        self.enabled = True
        self.disabled_reason = None
        self.failing_since = None

    def disable(self, reason: str, at: datetime, actor: str, request_id: str = "") -> None:
        self._require_live()
        if self.enabled:
            self._disabled(reason=reason, at=at, actor=actor, request_id=request_id)

    @event("Disabled")
    def _disabled(self, reason: str, at: datetime, actor: str, request_id: str) -> None:
        self.enabled = False
        self.disabled_reason = reason

    def rotate_secret(self, secret: str, now: datetime, by: Actor) -> None:
        self._require_live()
        self._secret_rotated(
            secret=secret,
            previous_secret=self.secret,
            previous_expires_at=now + ROTATION_GRACE,
            actor=by.id,
            request_id=by.request_id,
        )

    @event("SecretRotated")
    def _secret_rotated(
        self,
        secret: str,
        previous_secret: str,
        previous_expires_at: datetime,
        actor: str,
        request_id: str,
    ) -> None:
        self.secret = secret
        self.previous_secret = previous_secret
        self.previous_expires_at = previous_expires_at

    def delete(self, by: Actor) -> None:
        self._require_live()
        self._deleted(actor=by.id, request_id=by.request_id)

    @event("Deleted")
    def _deleted(self, actor: str, request_id: str) -> None:
        self.deleted = True

    # ---- what deliveries tell ------------------------------------------------------------

    def record_outcome(self, response_code: int | None, succeeded: bool, at: datetime) -> None:
        """A success ends a failing streak; 410 Gone disables at once; failing for
        ``FAILING_LIMIT`` with no success disables (each raises ``webhook.disabled``)."""
        if self.deleted:
            return
        if succeeded:
            if self.failing_since is not None:
                self._recovered(at=at)
            return
        if self.failing_since is None:
            self._failure_started(at=at)
        if response_code == 410:
            self.disable("the receiver answered 410 Gone", at, SYSTEM)
        elif self.failing_since is not None and at - self.failing_since >= FAILING_LIMIT:
            self.disable(f"every attempt failed for {FAILING_LIMIT.days} days", at, SYSTEM)

    @event("FailureStarted")
    def _failure_started(self, at: datetime) -> None:
        self.failing_since = at

    @event("Recovered")
    def _recovered(self, at: datetime) -> None:
        self.failing_since = None
