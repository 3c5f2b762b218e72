"""Each delivery to a webhook (``domain/webhook.py``): one payload, its attempts, and when the
next one is due.

A delivery is one event (or one test ping) for one webhook. Its id is derived from the webhook
and the event's position, so an event handed over twice is queued once, and the id (sent as
``webhook-id`` and ``X-Delivery-ID``) stays the same across retries. Each attempt is recorded
with its outcome; a failed one is retried after ``RETRY_DELAYS`` (with jitter, and no sooner than
the receiver's ``Retry-After``), then the delivery has failed.

Stored before this module existed as ``domain.webhook:WebhookDelivery``: that topic still
resolves (``application/topics.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import event

from domain.place import Placed
from domain.values import Actor

# seconds to wait after each failed attempt: the first retry at once, the last about 27.6 h after
# the first attempt; 9 attempts in all
RETRY_DELAYS = (0.0, 5.0, 300.0, 1_800.0, 7_200.0, 18_000.0, 36_000.0, 36_000.0)
JITTER = 0.1  # each delay is stretched or shrunk by up to this fraction
MAX_RETRY_AFTER = timedelta(hours=24)  # a receiver's Retry-After is honoured up to this

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
EVENT, TEST = "event", "test"


def delivery_id(webhook_id: UUID | str, key: str) -> UUID:
    """``key`` is ``position:<n>`` for an event (the same id however often it is handed over)."""
    return uuid5(UUID(str(webhook_id)), key)


class WebhookDelivery(Placed):
    """One payload for one webhook, its attempts, and when the next one is due."""

    @staticmethod
    def create_id(webhook_id: str, key: str) -> UUID:
        return delivery_id(webhook_id, key)

    @event("Queued")
    def __init__(
        self,
        *,
        team_id: str,
        webhook_id: str,
        key: str,
        kind: str,
        position: int | None,
        event_type: str,
        types: list[str],
        payload: str,
        next_attempt_at: datetime | None,
    ) -> None:
        self.team_id = team_id
        self.webhook_id = webhook_id
        self.key = key
        self.kind = kind  # event, or test (a ping: never retried, never queued behind others)
        self.position = position
        self.event_type = event_type
        self.types = list(types)
        self.payload = payload  # the exact body, so that every attempt sends the same bytes
        self.status = PENDING
        self.next_attempt_at = next_attempt_at
        self.attempts: list[dict[str, Any]] = []

    @property
    def finished(self) -> bool:
        return self.status != PENDING

    def record_attempt(
        self,
        *,
        at: datetime,
        response_code: int | None,
        duration: float,
        error: str | None,
        retry_after: float | None,
        jitter: float,
        retry: bool,
        delays: Sequence[float] = RETRY_DELAYS,
    ) -> None:
        """``jitter`` in [-1, 1] scales the delay by up to ``JITTER``; ``retry`` is False for a
        manual attempt, which schedules nothing; ``delays``: the schedule (tests shorten it)."""
        succeeded = response_code is not None and 200 <= response_code < 300
        failures = sum(1 for a in self.attempts if a["automatic"]) + 1
        next_at = None
        if not succeeded and retry and response_code != 410 and failures <= len(delays):
            next_at = next_attempt(at, failures, retry_after, jitter, delays)
        status = SUCCEEDED if succeeded else (PENDING if next_at is not None else FAILED)
        attempt = {
            "number": len(self.attempts) + 1,
            "at": at,
            "response_code": response_code,
            "duration": round(duration, 6),
            "error": error,
            "status": SUCCEEDED if succeeded else FAILED,
            "next_attempt_at": next_at,
            "automatic": retry,
        }
        self._attempted(attempt=attempt, status=status, next_attempt_at=next_at)

    @event("Attempted")
    def _attempted(
        self, attempt: dict[str, Any], status: str, next_attempt_at: datetime | None
    ) -> None:
        self.attempts = [*self.attempts, attempt]
        self.status = status
        self.next_attempt_at = next_attempt_at

    def reschedule(self, at: datetime, by: Actor) -> None:
        """A pending delivery is due at ``at`` (a manual redelivery: still in its turn)."""
        if self.status == PENDING:
            self._rescheduled(next_attempt_at=at, actor=by.id, request_id=by.request_id)

    @event("Rescheduled")
    def _rescheduled(self, next_attempt_at: datetime, actor: str, request_id: str) -> None:
        self.next_attempt_at = next_attempt_at


def next_attempt(
    at: datetime,
    failures: int,
    retry_after: float | None,
    jitter: float,
    delays: Sequence[float] = RETRY_DELAYS,
) -> datetime:
    """After the ``failures``-th failed attempt: the scheduled delay with jitter, or the
    receiver's Retry-After (up to ``MAX_RETRY_AFTER``) if that is later."""
    delay = delays[failures - 1] * (1 + JITTER * max(-1.0, min(1.0, jitter)))
    wait = timedelta(seconds=delay)
    if retry_after is not None and retry_after > 0:
        wait = max(wait, min(timedelta(seconds=retry_after), MAX_RETRY_AFTER))
    return at + wait
