"""The only way to the ledger: team-scoped loads, slug resolution, one commit per command, and
the reads of the log its consumers make.

Loads are scoped to the caller's team, and, for an API key scoped to one project, to that project:
``narrow_to_project`` narrows every load and commit of the current context (one request: the
context is copied into the worker thread each handler runs in) so that no handler needs to know.
Nothing outside this module touches the Ledger (the eventsourcing Application) itself: whether
it stores in SQLite, Postgres or memory (``infrastructure.event_store``) is not the handlers'
business, and every read of it keeps the team's and the project's scope.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, EventSourcedLog
from eventsourcing.domain import Aggregate, AggregateEvent, DomainEvent, DomainEventProtocol
from eventsourcing.persistence import Notification, Recording

from application.command_locks import CommandLocks
from application.committer import Committer
from application.conflict_retry import ConflictRetry
from application.errors import NotFoundError, PermissionDeniedError, VersionConflictError
from application.ledger import Ledger
from application.open_projects import OpenProjects
from application.ports import Clock
from domain.claim import SlugClaim, claim_id
from domain.hitl import HitlItem
from domain.output import OutputChunk
from domain.project import Project
from domain.task import Task

A = TypeVar("A", bound=Aggregate)
E = TypeVar("E", bound=DomainEvent)
R = TypeVar("R")

_project_scope: ContextVar[str | None] = ContextVar("project_scope", default=None)
TAKING_TURNS: tuple[type[Aggregate], ...] = (Task,)  # aggregates many clients write at once


def narrow_to_project(project_id: str | None) -> None:
    """From now on in this context, only this project and its tasks exist (None: the whole team)."""
    _project_scope.set(project_id)


def project_scope() -> str | None:
    """The one project this context is narrowed to, if any."""
    return _project_scope.get()


def _in_scope(aggregate: Aggregate) -> bool:
    scope = _project_scope.get()
    if scope is None:
        return True
    if isinstance(aggregate, Project):
        return str(aggregate.id) == scope
    if isinstance(aggregate, Task | HitlItem | OutputChunk):
        return aggregate.project_id == scope
    return True


class Store:
    def __init__(
        self,
        ledger: Ledger,
        committer: Committer,
        retry: ConflictRetry | None = None,
        *,
        clock: Clock,
    ) -> None:
        self.ledger = ledger
        self.committer = committer
        self.clock = clock  # the handlers' time: what they stamp, and what they compare with
        self.retry = retry or ConflictRetry(clock=clock)
        self.command_locks = CommandLocks()  # commands on one task take turns (in this process)
        self.open_projects = OpenProjects()  # application/open_projects.py

    # ---- loading what a caller names ---------------------------------------------------

    def load(self, cls: type[A], aggregate_id: UUID, team_id: str, kind: str) -> A:
        """Another team's object, a deleted one, and a missing one all answer not found."""
        aggregate = self.find(cls, aggregate_id, team_id)
        if aggregate is None or not _in_scope(aggregate):  # outside a scoped key's project too
            raise NotFoundError(kind, str(aggregate_id))
        return aggregate

    def visible(self, aggregate: Aggregate, team_id: str) -> bool:
        """Whether a caller of ``team_id`` sees this aggregate in this context (narrowed to a
        project or not): what ``load`` checks, for a copy kept between requests."""
        return getattr(aggregate, "team_id", None) == team_id and _in_scope(aggregate)

    def load_ref(self, cls: type[A], ref: str, team_id: str, kind: str) -> A:
        """``load`` by an id a caller names as text (an object without a slug): text that is
        not an id names nothing, so it is not found either."""
        try:
            aggregate_id = UUID(ref)
        except ValueError:
            raise NotFoundError(kind, ref) from None
        return self.load(cls, aggregate_id, team_id, kind)

    def load_live(self, cls: type[A], ref: str, team_id: str, kind: str) -> A:
        aggregate = self.load(cls, self.resolve(ref, team_id, kind), team_id, kind)
        if getattr(aggregate, "deleted", False):
            raise NotFoundError(kind, ref)
        return aggregate

    def resolve(self, ref: str, team_id: str, kind: str) -> UUID:
        """``ref`` is a UUID or a slug unique within the team."""
        try:
            return UUID(ref)
        except ValueError:
            pass
        claim = self.find(SlugClaim, claim_id(team_id, f"slug:{kind}", ref))
        if claim is None or claim.holder is None:
            raise NotFoundError(kind, ref)
        return UUID(claim.holder)

    # ---- looking up what the system derives or holds -------------------------------------

    def find(self, cls: type[A], aggregate_id: UUID, team_id: str | None = None) -> A | None:
        """The aggregate of class ``cls`` with this id, or None: missing, of another class, or
        (given ``team_id``) another team's. For ids the system derives (claims, a team's queue
        control or notices) or holds (a log's entries, a task's dependencies, a queued
        execution); an id a client names goes through ``load``, which the project narrows too."""
        return self.find_versioned(cls, aggregate_id, team_id)[0]

    def find_versioned(
        self, cls: type[A], aggregate_id: UUID, team_id: str | None = None
    ) -> tuple[A | None, int]:
        """``find``, and the version stored under the id (0: nothing is), whatever the answer:
        what a commit that relies on the answer expects (``commit(versions=...)``)."""
        if cls in TAKING_TURNS:  # inside a command: after the one before it on this task
            self.command_locks.take(aggregate_id)
        try:
            aggregate: Aggregate = self.ledger.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None, 0
        if not isinstance(aggregate, cls):
            return None, aggregate.version
        if team_id is not None and getattr(aggregate, "team_id", None) != team_id:
            return None, aggregate.version
        return aggregate, aggregate.version

    def get(self, cls: type[A], aggregate_id: UUID) -> A:
        """``find`` for an aggregate that exists unless something is wrong (a delivery its
        webhook's lane holds): ``NotFoundError`` if it does not."""
        found = self.find(cls, aggregate_id)
        if found is None:
            raise NotFoundError(cls.__name__.lower(), str(aggregate_id))
        return found

    def event_log(self, log_id: UUID, event_class: type[E]) -> EventSourcedLog[E]:
        """An event-sourced log (eventsourcing's ``EventSourcedLog``) under an id derived from
        its owner (a team's users, API keys, webhooks; a webhook's deliveries): a listing read as
        a range of versions, without a projection."""
        return EventSourcedLog(self.ledger.events, log_id, event_class)

    def events_of(self, aggregate_id: UUID, team_id: str) -> list[AggregateEvent]:
        """Every event of one aggregate, oldest first, deleted or not; none if it is another
        team's (its first event says whose). An aggregate's own sequence holds only its aggregate
        events (snapshots are kept apart), whatever the event store's types say."""
        events = cast("list[AggregateEvent]", list(self.ledger.events.get(aggregate_id)))
        if not events or getattr(events[0], "team_id", None) != team_id:
            return []
        return events

    def placed_first(self, aggregate_id: UUID, team_id: str, kind: str) -> Any:
        """The first event of one of the team's aggregates (it says where the aggregate is),
        without loading the aggregate: another team's, one outside a scoped key's project, and a
        missing one are not found. A read of a long history checks its scope with this."""
        first = self.first_event(aggregate_id)
        if first is None or getattr(first, "team_id", None) != team_id:
            raise NotFoundError(kind, str(aggregate_id))
        scope = _project_scope.get()
        if scope is not None and getattr(first, "project_id", scope) != scope:
            raise NotFoundError(kind, str(aggregate_id))
        return first

    def events_of_many(  # noqa: PLR0913
        self,
        ids: Collection[UUID],
        team_id: str,
        *,
        after: int = 0,
        limit: int = 1000,
        topics: Collection[str] | None = None,
        version: int | None = None,
        upto: int | None = None,
    ) -> list[tuple[int, Any]]:
        """``(position, event)`` of the events of these aggregates after ``after`` (up to
        ``upto``), in log order, at most ``limit`` (only of ``topics``, at ``version``, if
        given), read in one query; events of another team's aggregates are left out."""
        found = self.ledger.events_of_many(
            ids, after=after, limit=limit, topics=topics, version=version, upto=upto
        )
        return [(p, e) for p, e in found if getattr(e, "team_id", None) == team_id]

    def events_at(self, positions: Collection[int], team_id: str) -> list[tuple[int, Any]]:
        """``(position, event)`` of the events at these positions, in log order, read in one
        query; events of another team's aggregates are left out."""
        found = self.ledger.events_at(positions)
        return [(p, e) for p, e in found if getattr(e, "team_id", None) == team_id]

    def positions_of(self, aggregate_id: UUID) -> dict[int, int]:
        """Maps each version of an aggregate to its position in the one ordered log."""
        return self.ledger.positions_of(aggregate_id)

    # ---- the log, read in order by its consumers (every team's) -----------------------------

    def max_position(self) -> int:
        """The position of the newest event in the log (0: none yet)."""
        return self.ledger.max_position()

    def notifications(self, after: int, limit: int) -> Sequence[Notification]:
        """The next ``limit`` stored events after position ``after`` (``Notification.id`` is the
        position), not decoded: a consumer decodes each one (``decode``) and deals with one that
        cannot be decoded on its own."""
        return self.ledger.notifications(after, limit)

    def notification_at(self, position: int) -> Notification | None:
        """The stored event at ``position``, if there is one (a quarantined one, retried)."""
        found = self.notifications(position - 1, 1)
        return found[0] if found and found[0].id == position else None

    def decode(self, notification: Notification) -> DomainEventProtocol[Any]:
        """The domain event of a stored one; raises if this version cannot read it."""
        return self.ledger.decode(notification)

    def first_event(self, aggregate_id: UUID) -> DomainEventProtocol[Any] | None:
        """An aggregate's first event (it says the aggregate's team), even if the aggregate
        itself no longer loads."""
        return self.ledger.first_event(aggregate_id)

    def digest_head(self) -> tuple[int, str] | None:
        """The newest running digest of the log: (position, digest), None before any event
        (written with every transaction, ``infrastructure.audit_digests``)."""
        recorder: Any = self.ledger.recorder
        found: tuple[int, str] | None = recorder.digest_head()
        return found

    def digests(self, after: int, limit: int) -> list[tuple[int, str]]:
        """The next ``limit`` recorded digests after position ``after``, oldest first."""
        recorder: Any = self.ledger.recorder
        return list(recorder.select_digests(after, limit))

    @property
    def events_table(self) -> str:
        """The events table's name, for the readiness probe ("" when stored in memory)."""
        return self.ledger.events_table

    # ---- writing -------------------------------------------------------------------------

    def commit(
        self,
        *aggregates: Aggregate,
        logged: Sequence[DomainEvent] = (),
        unchanged: Collection[Aggregate] = (),
        versions: Mapping[UUID, int] | None = None,
    ) -> int:
        """Writes every pending event of the given aggregates, and the ``logged`` events of
        event-sourced logs, in one transaction; if ``unchanged`` are given (aggregates the
        decision read and relies on), only if each is still at the version read, else raises
        ``StaleReadError`` (a conflict: ``with_retries`` decides again). ``versions``: the same
        by id and version (0: that nothing is stored under the id), for what was read as absent.

        Returns the position of the last event written, or the current one if nothing changed.
        """
        events = self._pending(aggregates, logged)
        if not events:
            return self.max_position()  # nothing changed: the state is as of now
        relied = {**(versions or {}), **{a.id: a.version for a in unchanged}}
        try:
            recordings = self.committer.commit(events, relied)
        finally:
            self._forget_projects(aggregates)
        return max(r.notification.id for r in recordings)

    async def commit_soon(
        self, *aggregates: Aggregate, unchanged: Collection[Aggregate] = ()
    ) -> int:
        """``commit`` awaited on an event loop, no thread waiting for the writer: for a decision
        that read nothing from the store (``tasks.create_task_soon``). Something to write."""
        events = self._pending(aggregates, ())
        relied = {a.id: a.version for a in unchanged}
        try:
            recordings = await self.committer.commit_soon(events, relied)
        finally:
            self._forget_projects(aggregates)
        return max(r.notification.id for r in recordings)

    def _pending(self, aggregates: Sequence[Aggregate], logged: Sequence[DomainEvent]) -> list[Any]:
        for aggregate in aggregates:
            _check_writable(aggregate)
        self._forget_projects(aggregates)
        return [e for a in aggregates for e in a.collect_events()] + list(logged)

    def _forget_projects(self, aggregates: Sequence[Aggregate]) -> None:
        """This process's copy of a project it writes is no longer the one (again after the
        write: a create may have kept the version before it meanwhile)."""
        for aggregate in aggregates:
            if isinstance(aggregate, Project):
                self.open_projects.forget(aggregate.id)

    def on_commit(self, listener: Callable[[int], None]) -> None:
        """``listener(position)`` runs after each committed batch of this process (wakes the
        projection runner and the relay)."""
        self.committer.on_commit(listener)

    def on_recorded(self, listener: Callable[[list[Recording[Any]]], None]) -> None:
        """``listener(recordings)`` runs after each committed batch of this process with its
        events as committed (``Committer.on_recorded``: the projection runner takes them)."""
        self.committer.on_recorded(listener)

    def with_retries(self, decide: Callable[[], R]) -> R:
        """Runs a load-decide-commit function again when a concurrent writer won the race, until
        the retry bound passes (``application.conflict_retry``). An ``If-Match`` check inside
        ``decide`` fails at once on the fresh state: that conflict is not retried. Commands on
        one task in this process take turns (``application.command_locks``)."""
        return self.retry.run(lambda: self.command_locks.attempt(decide))

    def close(self) -> None:
        """Writes what is queued, then closes the ledger."""
        self.committer.close()
        self.ledger.close()


def _check_writable(aggregate: Aggregate) -> None:
    """A project-scoped caller writes its project and its tasks only: a new project is refused."""
    if _in_scope(aggregate):
        return
    scope = _project_scope.get()
    if isinstance(aggregate, Project):
        raise PermissionDeniedError(f"write outside project {scope}", "project-scoped key")
    raise NotFoundError("project", str(getattr(aggregate, "project_id", "")))


def check_version(aggregate: Aggregate, expected: int | None) -> None:
    if expected is not None and aggregate.version != expected:
        raise VersionConflictError(expected, aggregate.version)


def event_data(event: Any) -> dict[str, Any]:
    """The recorded fields of a domain event, without the envelope fields."""
    return {
        k: v
        for k, v in event.__dict__.items()
        if k not in ("originator_id", "originator_version", "timestamp", "originator_topic")
    }
