"""What leaves the system: stored events turned into public events, by position.

The relay (NATS), the WebSocket gateway and the webhook sender all see the same shape. Only the
aggregates people work with are published, and of a webhook only its being disabled or enabled
again; credentials, users, claims, idempotency records, webhook secrets and deliveries, and
command runs never leave (they hold digests, hashes, secrets or host output).

A public event names its team, and where they apply its project and task: every stored event
carries them (``domain.place``), so converting one reads that event alone. An event written
before they were carried, and not migrated since, cannot be placed: its conversion fails
(``UnplacedEventError``) and the consumer treats it as any event it cannot take.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import msgspec

from domain.budget import Budget
from domain.hitl import Checkpoint, Experience, HitlItem, Question
from domain.naming import public_name
from domain.output import OutputChunk
from domain.project import Project
from domain.queue import QueueControl
from domain.system import System
from domain.task import Task
from domain.values import rfc3339
from domain.webhook import Webhook

PUBLISHED: dict[type, str] = {
    Task: "task",
    Project: "project",
    Question: "question",
    Checkpoint: "checkpoint",
    Experience: "experience",
    OutputChunk: "output",
    QueueControl: "queue",
    Webhook: "webhook",
    System: "system",
    Budget: "budget",
}
# of these kinds only these events leave, with only these fields: a webhook's other events carry
# its URL's secrets and its signing secret
ONLY: dict[str, frozenset[str]] = {
    "webhook": frozenset({"disabled", "enabled"}),
    "system": frozenset({"maintenance", "alert"}),
    "budget": frozenset({"threshold_reached", "exceeded"}),
}
FIELDS: dict[str, frozenset[str]] = {"webhook": frozenset({"reason", "at"})}
ENVELOPE_FIELDS = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic"}
)
_TOKEN = re.compile(r"[^A-Za-z0-9_-]")


class PublicEvent(msgspec.Struct, frozen=True, kw_only=True):
    position: int  # the event's place in the one ordered log
    type: str  # "task.execution_finished"; see ``seed_types`` for seed 000's coarser names
    team_id: str
    aggregate: str  # task, project, question, checkpoint, experience, output, queue
    aggregate_id: str
    project_id: str | None = None  # the project it belongs to (a project's own id), if any
    task_id: str | None = None  # the task it belongs to (a task's own id), if any
    version: int
    timestamp: str
    actor: str | None
    data: dict[str, Any]


def subject(event: PublicEvent, prefix: str = "taskwarden") -> str:
    """``taskwarden.<team>.<aggregate>.<event>``: each token safe for NATS (no dots, spaces or
    wildcards)."""
    name = event.type.partition(".")[2]
    team = _TOKEN.sub("_", event.team_id) or "_"
    return f"{prefix}.{team}.{event.aggregate}.{name}"


def seed_types(event: PublicEvent) -> list[str]:
    """The event's own type, and seed 000's webhook names it also counts as: task.updated for any
    change of a task's fields, task.completed and task.failed for the ends of work."""
    names = [event.type]
    kind = event.type.partition(".")[2]
    if event.aggregate == "task":
        if kind in ("updated", "tags_added", "tags_removed", "assigned", "priority_set"):
            names.append("task.updated")
        outcome = event.data.get("outcome") if kind == "execution_finished" else None
        if outcome == "completed" or kind == "work_approved":
            names.append("task.completed")
        if outcome in ("failed", "timed_out") or kind == "expired_in_queue":
            names.append("task.failed")
    if event.aggregate == "project" and kind not in ("created", "deleted"):
        names.append("project.updated")
    return list(dict.fromkeys(names))


class UnplacedEventError(ValueError):
    """A stored event without its team: written before events carried their place, and not
    migrated since (``taskwarden migrate`` writes them in)."""


def describe(event: Any) -> tuple[str, str] | None:
    """The event's published kind and its team, read from the event; None if its kind is not
    published. Raises ``UnplacedEventError`` for a published event that does not say its team."""
    owner = type(event).__qualname__.partition(".")[0]
    kind = getattr(event, "item", None) if owner == HitlItem.__name__ else _kind_of_class(owner)
    if kind is None:
        if owner == HitlItem.__name__:
            raise UnplacedEventError("this withdrawal does not say which item it withdrew")
        return None
    team = getattr(event, "team_id", None)
    if team is None:
        raise UnplacedEventError(
            f"{type(event).__qualname__} does not say its team: run `taskwarden migrate`"
        )
    return kind, team


@functools.cache
def _kind_of_class(owner: str) -> str | None:
    if owner == HitlItem.__name__:
        return None  # shared by the item kinds: the event names its own (``item``)
    return next((kind for cls, kind in PUBLISHED.items() if cls.__name__ == owner), None)


def to_public(position: int, event: Any) -> PublicEvent | None:
    described = describe(event)
    if described is None:
        return None
    kind, team = described
    name = public_name(event).partition(".")[2]
    if kind in ONLY and name not in ONLY[kind]:
        return None
    data = {
        k: v if type(v) in _PLAIN else _jsonable(v)
        for k, v in event.__dict__.items()
        if k not in ENVELOPE_FIELDS
    }
    data.pop("request_id", None)
    actor = data.pop("actor", None)
    if kind in FIELDS:
        data = {k: v for k, v in data.items() if k in FIELDS[kind]}
    return PublicEvent(
        position=position,
        type=f"{kind}.{name}",
        team_id=team,
        aggregate=kind,
        aggregate_id=str(event.originator_id),
        project_id=str(event.originator_id) if kind == "project" else data.get("project_id"),
        task_id=str(event.originator_id) if kind == "task" else data.get("task_id"),
        version=event.originator_version,
        timestamp=rfc3339(event.timestamp) or "",
        actor=actor,
        data=data,
    )


class EventSource(Protocol):
    """What the readers of the log read it through (``application.store.Store``)."""

    def notifications(self, after: int, limit: int) -> Sequence[Any]: ...
    def decode(self, notification: Any) -> Any: ...
    def max_position(self) -> int: ...


@dataclass(frozen=True)
class Unconverted:
    """A stored event that could not be decoded (``event`` None) or made public."""

    notification: Any
    event: Any
    error: BaseException

    @property
    def position(self) -> int:
        return int(self.notification.id)


@dataclass(frozen=True)
class Scan:
    """The public events among some stored ones, those that failed, and the last position
    looked at (to resume from, whether or not anything was published)."""

    events: list[PublicEvent]
    last: int
    failures: list[Unconverted] = field(default_factory=list)

    def before_failure(self) -> tuple[list[PublicEvent], int]:
        """The events before the first failure and the position to resume from (just before
        it): what a reader that must not pass over a failure takes."""
        if not self.failures:
            return self.events, self.last
        at = self.failures[0].position
        return [e for e in self.events if e.position < at], at - 1


def scan(source: EventSource, after: int, limit: int) -> Scan:
    """Converts the next ``limit`` stored events after position ``after``, each on its own: one
    that fails (an unknown topic, a state this version cannot read, data the conversion cannot
    take) is reported in ``failures`` and the others are converted still. Reading the store
    itself failing raises."""
    return _converted(source.notifications(after, limit), source.decode, after)


def scan_handed(pairs: Sequence[tuple[Any, Any]], after: int) -> Scan:
    """``scan`` of stored events handed with their domain events (``application/handed.py``):
    this process's commits as committed, nothing to read or decode."""
    events = {notification.id: event for notification, event in pairs}
    return _converted([n for n, _ in pairs], lambda n: events[n.id], after)


def _converted(notifications: Sequence[Any], decode: Callable[[Any], Any], after: int) -> Scan:
    events: list[PublicEvent] = []
    failures: list[Unconverted] = []
    for notification in notifications:
        event = None
        try:
            event = decode(notification)
            public = to_public(notification.id, event)
        except Exception as error:  # noqa: BLE001 - reported: the consumer decides
            failures.append(Unconverted(notification, event, error))
            continue
        if public is not None:
            events.append(public)
    return Scan(events, notifications[-1].id if notifications else after, failures)


def public_events(source: EventSource, after: int, limit: int) -> tuple[list[PublicEvent], int]:
    """The public events among the next ``limit`` stored ones after position ``after``, and the
    last position looked at; raises the first failure (tools and tests: the consumers of the
    log use ``scan`` and treat a failure as docs/operations.md, "Quarantine" says)."""
    found = scan(source, after, limit)
    if found.failures:
        raise found.failures[0].error
    return found.events, found.last


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _jsonable(value: Any) -> Any:
    if type(value) in _PLAIN:  # most fields: nothing to convert
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, UUID):
        return str(value)
    return value
