"""What claims decide on but never write, kept between claims: each team's queue control and
settings, and each project (its cap), so that a claim reads from the store only the task it starts.

Before, every claim read those three aggregates from the event store (five to six round trips,
about 1.5 ms on Postgres, between a request and its start). A claim now decides on this process's
copies (an aggregate not kept yet is read and kept, an absent one as absent) and its commit relies
on each copy that let the row through being still at the version read (``Store.commit(versions=
...)``, ``infrastructure/unchanged.py``): if another request or process changed one meanwhile (a
band paused, a cap lowered, a budget set), nothing is written, the copies are dropped and the
claim decides again on fresh reads. A copy only ever lets work through: a refusal (a paused band,
a cap reached, a budget spent) is decided again on a fresh read before it stands, so a copy from
before a resume, a raised cap or a raised budget never holds work back
(``application/open_projects.py`` keeps the projects creates decide on the same way).
"""

from __future__ import annotations

from typing import TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from application.kept import Kept
from application.store import Store

A = TypeVar("A", bound=Aggregate)
SIZE = 4_096  # copies kept at most


class ClaimCopies:
    def __init__(self, store: Store, size: int = SIZE) -> None:
        self._store = store
        self._known: Kept[UUID, tuple[Aggregate | None, int]] = Kept(size)

    def reads(self) -> ClaimReads:
        """The reads of one claim."""
        return ClaimReads(self)

    def find(
        self, cls: type[A], aggregate_id: UUID, team_id: str, *, fresh: bool
    ) -> tuple[A | None, int]:
        """The kept copy and its version (``fresh``: read from the store now, and kept)."""
        known = None if fresh else self._known.get(aggregate_id)
        if known is None:
            known = self._store.find_versioned(cls, aggregate_id, team_id)
            self._known.keep(aggregate_id, known)
        aggregate, version = known
        return (aggregate if isinstance(aggregate, cls) else None), version

    def forget(self, ids: list[UUID]) -> None:
        for aggregate_id in ids:
            self._known.drop(aggregate_id)

    def __len__(self) -> int:
        return len(self._known)


class ClaimReads:
    """The copies one claim decided on: the version of each (0: absent), for its commit."""

    def __init__(self, copies: ClaimCopies) -> None:
        self._copies = copies
        self.versions: dict[UUID, int] = {}

    def find(
        self, cls: type[A], aggregate_id: UUID, team_id: str, *, fresh: bool = False
    ) -> A | None:
        """The kept copy (``fresh``: read from the store now, and kept)."""
        aggregate, version = self._copies.find(cls, aggregate_id, team_id, fresh=fresh)
        self.versions[aggregate_id] = version
        return aggregate

    def relied(self, ids: list[UUID]) -> dict[UUID, int]:
        """The versions a commit deciding on ``ids`` relies on (those this claim read)."""
        return {i: self.versions[i] for i in ids if i in self.versions}

    def forget(self, ids: list[UUID]) -> None:
        """Drops the copies of ``ids``: found stale by a commit."""
        self._copies.forget(ids)
