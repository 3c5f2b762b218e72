"""The handlers' unit of work: team-scoped loads, slug resolution, one commit per command.

Loads are scoped to the caller's team, and, for an API key scoped to one project, to that project:
``narrow_to_project`` narrows every load and commit of the current context (one request: the
context is copied into the worker thread each handler runs in) so that no handler needs to know.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, DomainEvent

from application.committer import Committer
from application.conflict_retry import ConflictRetry
from application.errors import NotFoundError, PermissionDeniedError, VersionConflictError
from application.ledger import Ledger
from domain.claim import SlugClaim, claim_id
from domain.hitl import HitlItem
from domain.output import OutputChunk
from domain.project import Project
from domain.task import Task

A = TypeVar("A", bound=Aggregate)
R = TypeVar("R")

_project_scope: ContextVar[str | None] = ContextVar("project_scope", default=None)


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
        self, ledger: Ledger, committer: Committer, retry: ConflictRetry | None = None
    ) -> None:
        self.ledger = ledger
        self.committer = committer
        self.retry = retry or ConflictRetry()

    def load(self, cls: type[A], aggregate_id: UUID, team_id: str, kind: str) -> A:
        """Another team's object, a deleted one, and a missing one all answer not found."""
        try:
            aggregate: Aggregate = self.ledger.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFoundError(kind, str(aggregate_id)) from None
        if not isinstance(aggregate, cls) or getattr(aggregate, "team_id", None) != team_id:
            raise NotFoundError(kind, str(aggregate_id))
        if not _in_scope(aggregate):  # outside a project-scoped key's project: as if missing
            raise NotFoundError(kind, str(aggregate_id))
        return aggregate

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
        try:
            claim: Aggregate = self.ledger.repository.get(claim_id(team_id, f"slug:{kind}", ref))
        except AggregateNotFoundError:
            raise NotFoundError(kind, ref) from None
        if not isinstance(claim, SlugClaim) or claim.holder is None:
            raise NotFoundError(kind, ref)
        return UUID(claim.holder)

    def commit(self, *aggregates: Aggregate, logged: Sequence[DomainEvent] = ()) -> int:
        """Writes every pending event of the given aggregates, and the ``logged`` events of
        event-sourced logs, in one transaction.

        Returns the position of the last event written, or the current one if nothing changed.
        """
        for aggregate in aggregates:
            _check_writable(aggregate)
        events = [e for a in aggregates for e in a.collect_events()] + list(logged)
        if not events:
            return self.ledger.max_position()  # nothing changed: the state is as of now
        recordings = self.committer.commit(events)
        return max(r.notification.id for r in recordings)

    def with_retries(self, decide: Callable[[], R]) -> R:
        """Runs a load-decide-commit function again when a concurrent writer won the race, until
        the retry bound passes (``application.conflict_retry``). An ``If-Match`` check inside
        ``decide`` fails at once on the fresh state: that conflict is not retried."""
        return self.retry.run(decide)


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
