"""A commit that relies on aggregates it read but did not change: written only if they are still
at the versions read, checked in the commit's own transaction.

A create decides on the project it was given (live, active, the caller's), but writes only the
task: without this, another request archiving the project between the read and the write would
not stop it, and a copy of the project kept between requests (``application/open_projects.py``)
could be stale by any amount. The recorders are given ``unchanged`` (aggregate id -> version) with
the events (``Ledger.save(..., unchanged=...)``, which eventsourcing hands to ``insert_events``):
under the write lock they read each aggregate's newest version, count the versions of the events
being inserted with it, and refuse the whole transaction with ``StaleReadError`` (an
``IntegrityError``: the committer writes the batch's commands alone, and the command decides
again on what is stored now) when one is not where it was read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent

UNCHANGED = "unchanged"  # the keyword the versions travel under, from the Store to the recorder


class StaleReadError(IntegrityError):
    """An aggregate the commit relied on changed since it was read: nothing was written."""


def expected(kwargs: Mapping[str, Any]) -> Mapping[UUID, int]:
    """The versions a commit relies on (none for most)."""
    found: Mapping[UUID, int] | None = kwargs.get(UNCHANGED)
    return found or {}


def check(
    relied: Mapping[UUID, int], current: Mapping[UUID, int], events: Sequence[StoredEvent]
) -> None:
    """Raises ``StaleReadError`` unless each relied-on aggregate, with ``current`` its newest
    stored version (absent: none) and the ``events`` about to be inserted, is at its version."""
    after: dict[Any, int] = {key: current.get(key, 0) for key in relied}
    for event in events:
        key = event.originator_id
        if key in after and event.originator_version > after[key]:
            after[key] = event.originator_version
    for key, version in relied.items():
        if after[key] != version:
            msg = f"aggregate {key} is at version {after[key]}, read at {version}"
            raise StaleReadError(msg)
