"""Recording, listing and retrying quarantined events (docs/operations.md, "Quarantine").

``record`` writes, in one transaction, the ``Quarantine`` (its id derived from consumer and
position: a second process recording the same one conflicts and then finds it recorded), its
entry in the log of every quarantine (the listing), and a ``system.alert`` for the poisoned
event's team when it is known, so that team's webhooks and sockets hear of it.

A retry request is an event on the entry and an entry in the consumer's own retry log. Each
consumer reads its retry log (``RetryRequests``): one small query every few seconds, and the
whole log once when its process starts. So a request reaches the consumer in whatever process
runs it, through the store.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec
from eventsourcing.application import EventSourcedLog
from eventsourcing.domain import DomainEvent

from application.errors import NotFoundError
from application.store import Store
from application.system_notices import team_system
from domain.errors import RuleViolationError
from domain.quarantine import RETRY_REQUESTED, Quarantine, quarantine_id, short
from domain.values import rfc3339

log = logging.getLogger("taskwarden.quarantine")
_LOGS = uuid5(NAMESPACE_URL, "https://taskwarden.dev/quarantine/logs")
EVERY_TEAM = "*"  # a scope that sees every entry, those of no team included (X-Admin-Key, CLI)


class Poison(msgspec.Struct, frozen=True, kw_only=True):
    """What a consumer knows of an event it gives up on."""

    consumer: str
    position: int
    topic: str
    team_id: str | None
    error_type: str
    error: str
    attempts: int

    @classmethod
    def of(
        cls,
        consumer: str,
        position: int,
        topic: str,
        team_id: str | None,
        error: BaseException,
        attempts: int,
    ) -> Poison:
        return cls(
            consumer=consumer,
            position=position,
            topic=topic,
            team_id=team_id,
            error_type=type(error).__name__,
            error=short(str(error)),
            attempts=attempts,
        )


class FirstEvents(Protocol):
    """What ``team_of`` reads: the Store (or the Ledger behind it)."""

    def first_event(self, aggregate_id: UUID) -> Any: ...


def stored_poison(
    consumer: str,
    source: FirstEvents,
    notification: Any,
    event: Any,
    error: BaseException,
    attempts: int,
) -> Poison:
    """The poison of a consumer that reads the store: its position and topic from the stored
    record, its team as far as it can be known (``team_of``)."""
    team = team_of(source, notification, event)
    return Poison.of(consumer, notification.id, notification.topic, team, error, attempts)


def team_of(source: FirstEvents, notification: Any, event: Any) -> str | None:
    """The team of a stored event, if it can be known: the event's own ``team_id``, the stored
    record's (an event that cannot be decoded), or its aggregate's creating event's (one row:
    the aggregate itself may no longer load)."""
    team = getattr(event, "team_id", None)
    if isinstance(team, str):
        return team
    try:
        state = json.loads(notification.state)
    except Exception:  # noqa: BLE001 - not JSON (or too deep): look further
        state = None
    if isinstance(state, dict) and isinstance(state.get("team_id"), str):
        return str(state["team_id"])
    try:
        first = source.first_event(notification.originator_id)
    except Exception:  # noqa: BLE001 - the first event cannot be read either: no team known
        return None
    team = getattr(first, "team_id", None)
    return team if isinstance(team, str) else None


class QuarantineListed(DomainEvent):
    quarantine_id: str


class RetryLogged(DomainEvent):
    quarantine_id: str


def _every(store: Store) -> EventSourcedLog[QuarantineListed]:
    return store.event_log(uuid5(_LOGS, "all"), QuarantineListed)


def _retries(store: Store, consumer: str) -> EventSourcedLog[RetryLogged]:
    return store.event_log(uuid5(_LOGS, f"retries:{consumer}"), RetryLogged)


class QuarantineService:
    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- recording -----------------------------------------------------------------------

    def record(self, poison: Poison) -> bool:
        """Records the quarantine once (a failure again on a released or retried entry is
        recorded as ``FailedAgain``); True when this call wrote it. The team's alert goes with
        it; if the alert cannot be written (the team's notices are themselves broken), the
        quarantine is recorded without it."""
        try:
            return self.store.with_retries(lambda: self._record(poison, alert=True))
        except Exception:
            log.exception("could not alert team %s; recording without the alert", poison.team_id)
            return self.store.with_retries(lambda: self._record(poison, alert=False))

    def _record(self, poison: Poison, *, alert: bool) -> bool:
        existing = self._get(quarantine_id(poison.consumer, poison.position))
        logged: list[Any] = []
        if existing is None:
            entry = Quarantine(
                consumer=poison.consumer,
                position=poison.position,
                topic=poison.topic,
                team_id=poison.team_id,
                error_type=poison.error_type,
                error=poison.error,
                attempts=poison.attempts,
            )
            logged.append(_every(self.store).trigger_event(quarantine_id=str(entry.id)))
        elif existing.fail_again(poison.error_type, poison.error, poison.attempts):
            entry = existing
        else:
            return False
        aggregates: list[Any] = [entry]
        if alert and poison.team_id is not None:
            system = team_system(self.store, poison.team_id)
            system.raise_alert(_alert_text(poison), "warning", f"system:{poison.consumer}", "")
            aggregates.append(system)
        self.store.commit(*aggregates, logged=logged)
        log.warning(
            "%s quarantined position %d (%s) after %d attempts: %s: %s",
            poison.consumer,
            poison.position,
            poison.topic,
            poison.attempts,
            poison.error_type,
            poison.error,
        )
        return True

    def release(self, entry_id: UUID) -> bool:
        """The consumer processed a position it was asked to retry; False if the request was
        settled meanwhile (another process of the same consumer)."""

        def decide() -> bool:
            entry = self._get(entry_id)
            if entry is None or entry.status != RETRY_REQUESTED:
                return False
            entry.release(at=self.store.clock.now())
            self.store.commit(entry)
            return True

        return self.store.with_retries(decide)

    # ---- reading -------------------------------------------------------------------------

    def entries(self, consumer: str | None = None, team: str = EVERY_TEAM) -> list[Quarantine]:
        """Every entry (of one consumer) visible to ``team``, oldest first."""
        found = []
        for listed in _every(self.store).get():
            entry = self._get(UUID(listed.quarantine_id))
            if entry is None or not _visible(entry, team):
                continue
            if consumer is None or entry.consumer == consumer:
                found.append(entry)
        return found

    def find(self, ref: str, consumer: str | None = None, team: str = EVERY_TEAM) -> Quarantine:
        """By id, or by position (with the consumer when several quarantined that position)."""
        if ref.isdigit():
            if consumer is not None:
                return self._visible(quarantine_id(consumer, int(ref)), ref, team)
            matches = [e for e in self.entries(None, team) if e.position == int(ref)]
            if len(matches) > 1:
                names = sorted(e.consumer for e in matches)
                raise RuleViolationError(
                    f"position {ref} is quarantined by {', '.join(names)}: name the consumer",
                    field="consumer",
                    consumers=names,
                )
            if not matches:
                raise NotFoundError("quarantine", ref)
            return matches[0]
        try:
            key = UUID(ref)
        except ValueError:
            raise NotFoundError("quarantine", ref) from None
        return self._visible(key, ref, team)

    def _visible(self, key: UUID, ref: str, team: str) -> Quarantine:
        entry = self._get(key)
        if entry is None or not _visible(entry, team):
            raise NotFoundError("quarantine", ref)
        return entry

    def _get(self, key: UUID) -> Quarantine | None:
        return self.store.find(Quarantine, key)

    # ---- retrying ------------------------------------------------------------------------

    def request_retry(
        self,
        ref: str,
        actor: str,
        request_id: str,
        consumer: str | None = None,
        team: str = EVERY_TEAM,
    ) -> tuple[Quarantine, int]:
        """Asks the consumer to process the position again; the entry and the position."""

        def decide() -> tuple[Quarantine, int]:
            entry = self.find(ref, consumer, team)
            entry.request_retry(actor, request_id, at=self.store.clock.now())
            logged = _retries(self.store, entry.consumer).trigger_event(quarantine_id=str(entry.id))
            return entry, self.store.commit(entry, logged=[logged])

        return self.store.with_retries(decide)

    def retry_requests(self, consumer: str, after: int) -> tuple[list[Quarantine], int]:
        """The entries of ``consumer`` whose retry was asked for in its retry log after entry
        ``after`` and is still pending; and the last entry read."""
        retries = _retries(self.store, consumer)
        last = retries.get_last()
        if last is None or last.originator_version <= after:
            return [], after
        pending: dict[UUID, Quarantine] = {}
        for logged in retries.get(gt=after, lte=last.originator_version):
            entry = self._get(UUID(logged.quarantine_id))
            if entry is not None and entry.status == RETRY_REQUESTED:
                pending[entry.id] = entry
        return list(pending.values()), last.originator_version


def _visible(entry: Quarantine, team: str) -> bool:
    return team in (EVERY_TEAM, entry.team_id)


def _alert_text(poison: Poison) -> str:
    return short(
        f"{poison.consumer} could not process the event at position {poison.position} "
        f"({poison.topic}) after {poison.attempts} attempts ({poison.error_type}) and passed "
        "over it; an admin can list it and retry it (GET /api/admin/quarantine)",
        2_000,
    )


def entry_data(entry: Quarantine) -> dict[str, Any]:
    """An entry as the API and the CLI show it."""
    return {
        "id": str(entry.id),
        "consumer": entry.consumer,
        "position": entry.position,
        "topic": entry.topic,
        "team_id": entry.team_id,
        "status": entry.status,
        "error_type": entry.error_type,
        "error": entry.error,
        "attempts": entry.attempts,
        "failures": entry.failures,
        "quarantined_at": _time(entry.created_on),
        "updated_at": _time(entry.modified_on),
        "retry_requested_by": entry.retry_requested_by,
        "retry_requested_at": _time(entry.retry_requested_at),
        "released_at": _time(entry.released_at),
    }


def _time(value: Any) -> str | None:
    return rfc3339(value)
