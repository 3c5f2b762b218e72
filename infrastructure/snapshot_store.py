"""The recorders of the ledger's snapshots (``application/snapshots.py``), SQLite and Postgres.

eventsourcing keeps snapshots in a table of their own (``stored_snapshots`` on SQLite,
``taskwarden_snapshots`` on Postgres), written by an aggregate recorder: no notification id, no
digest, nothing any reader of the log sees. ``taskwarden migrate`` creates it. A store migrated by
a version without snapshots has no such table until the next migrate: snapshots are derived data,
so until then loads replay the events and none is written (said once in the log), where a missing
events table fails everything.

On Postgres a call gives up within the store's bound, as the events' recorder does
(``infrastructure.postgres_event_store``): a load reads the snapshot first, and must not wait
eventsourcing's ten retries for a server that is down.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import PersistenceError, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder

from infrastructure.postgres_event_store import _within_the_bound

log = logging.getLogger("taskwarden.snapshots")


def missing_table(error: BaseException) -> bool:
    cause = error.__cause__
    if isinstance(cause, psycopg.errors.UndefinedTable):
        return True
    return isinstance(cause, sqlite3.OperationalError) and "no such table" in str(cause)


class _WithoutTheTable:
    """Reads none and writes none while the table is missing."""

    events_table_name: str
    _missing_said = False

    def _missing(self) -> None:
        if not self._missing_said:
            self._missing_said = True
            log.warning(
                "no table %s: tasks load by replaying their events until `taskwarden migrate`",
                self.events_table_name,
            )

    def select_events(self, originator_id: Any, **kwargs: Any) -> Sequence[StoredEvent]:
        try:
            found: Sequence[StoredEvent] = super().select_events(originator_id, **kwargs)  # type: ignore[misc]
        except PersistenceError as error:
            if not missing_table(error):
                raise
            self._missing()
            return []
        return found

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        try:
            return super().insert_events(stored_events, **kwargs)  # type: ignore[misc]
        except PersistenceError as error:
            if not missing_table(error):
                raise
            self._missing()
            return None


class SQLiteSnapshotRecorder(_WithoutTheTable, SQLiteAggregateRecorder):
    """``aggregate_recorder_class`` of the ledger's SQLite factory (only snapshots use it)."""


class _BoundedSnapshotRecorder(PostgresAggregateRecorder):
    insert_events = _within_the_bound(PostgresAggregateRecorder.insert_events)
    select_events = _within_the_bound(PostgresAggregateRecorder.select_events)


class PostgresSnapshotRecorder(_WithoutTheTable, _BoundedSnapshotRecorder):
    """``aggregate_recorder_class`` of the ledger's Postgres factory (only snapshots use it)."""
