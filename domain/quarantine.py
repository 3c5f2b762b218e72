"""A quarantined event: one position of the log that one consumer failed on and passed over.

Every consumer of the log (the projection runner, the relay, the webhook queue, the WebSocket
feeds) retries an event it fails on a bounded number of times, then records it here and goes on,
so that no single event can stop it. The id is derived from the consumer and the position: two
processes recording the same quarantine conflict on version 1, and the loser finds it recorded.

An operator asks for a retry after a fix (``request_retry``); the consumer that quarantined it
processes the position again and records the outcome: ``Released`` (it went through) or
``FailedAgain`` (quarantined again, the same entry). A consumer that fails again on a released
position (a rebuild replaying the log) records ``FailedAgain`` too.
"""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain.errors import DomainError
from domain.place import Placed

_NAMESPACE = uuid5(NAMESPACE_URL, "https://taskwarden.dev/quarantine")
QUARANTINED, RETRY_REQUESTED, RELEASED = "quarantined", "retry_requested", "released"
ERROR_LIMIT = 500  # characters of an error message kept


def quarantine_id(consumer: str, position: int) -> UUID:
    return uuid5(_NAMESPACE, f"{consumer}\x1f{position}")


def short(text: str, limit: int = ERROR_LIMIT) -> str:
    """An error message cut to ``limit`` characters (an exception may quote a whole event)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RetryNotAllowedError(DomainError):
    code = "QUARANTINE_NOT_QUARANTINED"


class Quarantine(Placed):
    """One consumer's failure on one position, with what it knew of the event."""

    @staticmethod
    def create_id(consumer: str, position: int) -> UUID:
        return quarantine_id(consumer, position)

    @event("Recorded")
    def __init__(
        self,
        *,
        consumer: str,
        position: int,
        topic: str,
        team_id: str | None,
        error_type: str,
        error: str,
        attempts: int,
    ) -> None:
        self.consumer = consumer
        self.position = position
        self.topic = topic
        self.team_id = team_id
        self.error_type = error_type
        self.error = error
        self.attempts = attempts
        self.status = QUARANTINED
        self.failures = 1  # times it was quarantined (first time, then each FailedAgain)
        self.retry_requested_by: str | None = None
        self.retry_requested_at: datetime | None = None
        self.released_at: datetime | None = None

    def request_retry(self, actor: str, request_id: str, *, at: datetime) -> None:
        """An operator asks the consumer to process the position again (after a fix)."""
        if self.status != QUARANTINED:
            raise RetryNotAllowedError(
                f"the entry is {self.status}, not quarantined", status=self.status
            )
        self._retry_requested(team_id=self.team_id, actor=actor, request_id=request_id, at=at)

    @event("RetryRequested")
    def _retry_requested(
        self, team_id: str | None, actor: str, request_id: str, at: datetime
    ) -> None:
        self.status = RETRY_REQUESTED
        self.retry_requested_by = actor
        self.retry_requested_at = at

    def release(self, *, at: datetime) -> None:
        """The consumer processed the position: the entry is closed."""
        if self.status == RELEASED:
            return
        self._released(team_id=self.team_id, at=at)

    @event("Released")
    def _released(self, team_id: str | None, at: datetime) -> None:
        self.status = RELEASED
        self.released_at = at

    def fail_again(self, error_type: str, error: str, attempts: int) -> bool:
        """The consumer failed on the position again (a retry, or a replay of the log); False
        when it is quarantined already (nothing to record)."""
        if self.status == QUARANTINED:
            return False
        self._failed_again(
            team_id=self.team_id, error_type=error_type, error=short(error), attempts=attempts
        )
        return True

    @event("FailedAgain")
    def _failed_again(
        self, team_id: str | None, error_type: str, error: str, attempts: int
    ) -> None:
        self.status = QUARANTINED
        self.error_type = error_type
        self.error = error
        self.attempts = attempts
        self.failures += 1
