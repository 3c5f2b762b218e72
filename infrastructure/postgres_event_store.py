"""The ledger's Postgres recorder, made to give up within a bound when the server is down.

eventsourcing's recorder retries each failed statement 10 times, and each try waits up to the
pool's timeout for a connection that cannot come: with the server stopped, a write or a single-task
read took 14 to 22 s to answer its 503, longer than many clients wait. Here one bound, the pool's
wait (``STORE_TIMEOUT_SECONDS``, from TASKWARDEN_DATABASE_TIMEOUT_SECONDS), limits a whole
call: a connection found broken is tried again while time remains, a pool that had no connection
to give within the bound is not (the pool has been reconnecting all along), so a call ends after
about the bound.

The pool also stops reconnecting in the background after the bound (psycopg's default: 5 minutes
with the pause doubling from 1 s, so the first request after a long outage could wait a minute for
the next attempt): a request that finds the pool empty starts a new attempt at once, so service
resumes with the first request after the server does.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import (
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from eventsourcing.utils import Environment, EnvType
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier
from psycopg_pool import PoolTimeout

PAUSE_SECONDS = 0.05  # before trying again on a fresh connection
STORE_TIMEOUT = "STORE_TIMEOUT_SECONDS"  # the bound, in the ledger's environment


def _within_the_bound(decorated: Any) -> Any:
    """The undecorated recorder method (eventsourcing's ``@retry`` keeps it as ``__wrapped__``;
    a method of ours has none), tried again on a broken connection until the datastore's bound."""
    method = getattr(decorated, "__wrapped__", decorated)

    @functools.wraps(method)
    def call(self: PostgresApplicationRecorder, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + self.datastore.pool.timeout
        while True:
            try:
                return method(self, *args, **kwargs)
            except (InterfaceError, OperationalError) as error:
                if isinstance(error.__cause__, PoolTimeout):
                    raise  # the pool already waited the whole bound
                if time.monotonic() + PAUSE_SECONDS >= deadline:
                    raise
                time.sleep(PAUSE_SECONDS)

    return call


class BoundedApplicationRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        events = Identifier(self.datastore.schema, self.events_table_name)
        columns = "notification_id, originator_id, originator_version, topic, state"
        self._next_after, self._next_from = (
            SQL(
                f"SELECT {columns} FROM {{0}} WHERE notification_id {op} %s "  # noqa: S608
                "ORDER BY notification_id LIMIT %s"
            )
            .format(events)
            .as_string()
            for op in (">", ">=")
        )
        self._from_snapshot: dict[tuple[str, bool], str] = {}

    def _select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """eventsourcing's, for the consumers' one question (the next ``limit`` after or from
        ``start``) with a statement composed once and rows as tuples: eventsourcing composes
        its statement anew on each call and reads each row as a dict, about 55 µs of a 300 µs
        read of the next events (each commit is read so by the projection runner, the relay and
        the budget watch). The rows come in binary: in text each state travels as hex, twice
        its bytes, for the server to encode and this process to decode (a read of 5,000
        events: 3.3 µs per event in text, 1.5 in binary)."""
        if start is None or stop is not None or topics:
            return _SELECT_NOTIFICATIONS(
                self, start, limit, stop, topics, inclusive_of_start=inclusive_of_start
            )
        statement = self._next_from if inclusive_of_start else self._next_after
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(statement, (start, limit), prepare=True, binary=True)
            return [
                Notification(
                    id=row[0],
                    originator_id=row[1],
                    originator_version=row[2],
                    topic=row[3],
                    state=bytes(row[4]),
                )
                for row in curs.fetchall()
            ]

    def _select_from_snapshot(
        self, originator_id: Any, snapshots: str, lte: int | None = None
    ) -> tuple[StoredEvent | None, list[StoredEvent]] | None:
        """An aggregate's newest snapshot (at or below ``lte``) in the table ``snapshots`` (of
        this schema) and its events after it (up to ``lte``), in one statement: one round trip
        and one view of the data where eventsourcing's repository makes two reads. None if
        there is no such table (a store not migrated since there were snapshots)."""
        statement = self._from_snapshot.get((snapshots, lte is None))
        if statement is None:
            schema = self.datastore.schema
            capped = "" if lte is None else "AND originator_version <= %(lte)s "
            statement = (
                SQL(
                    "WITH s AS (SELECT originator_version, topic, state FROM {snapshots} "  # noqa: S608 - our own fragments
                    f"WHERE originator_id = %(id)s {capped}"
                    "ORDER BY originator_version DESC LIMIT 1) "
                    "SELECT true, originator_version, topic, state FROM s UNION ALL "
                    "SELECT false, originator_version, topic, state FROM {events} "
                    "WHERE originator_id = %(id)s AND originator_version > "
                    f"COALESCE((SELECT originator_version FROM s), 0) {capped}"
                    "ORDER BY 1 DESC, 2"
                )
                .format(
                    snapshots=Identifier(schema, snapshots),
                    events=Identifier(schema, self.events_table_name),
                )
                .as_string()
            )
            self._from_snapshot[(snapshots, lte is None)] = statement
        snapshot, events = None, []
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            try:
                curs.execute(
                    statement, {"id": originator_id, "lte": lte}, prepare=True, binary=True
                )
            except psycopg.errors.UndefinedTable:
                return None
            for is_snapshot, version, topic, state in curs.fetchall():
                stored = StoredEvent(originator_id, version, topic, bytes(state))
                if is_snapshot:
                    snapshot = stored
                else:
                    events.append(stored)
        return snapshot, events

    insert_events = _within_the_bound(PostgresApplicationRecorder.insert_events)
    select_events = _within_the_bound(PostgresApplicationRecorder.select_events)
    select_from_snapshot = _within_the_bound(_select_from_snapshot)
    select_notifications = _within_the_bound(_select_notifications)
    max_notification_id = _within_the_bound(PostgresApplicationRecorder.max_notification_id)


_SELECT_NOTIFICATIONS = getattr(
    PostgresApplicationRecorder.select_notifications,
    "__wrapped__",
    PostgresApplicationRecorder.select_notifications,
)


class BoundedPostgresFactory(PostgresFactory):
    """``PERSISTENCE_MODULE`` for the ledger on Postgres (``infrastructure.event_store``)."""

    application_recorder_class = BoundedApplicationRecorder

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        pool = self.datastore.pool  # not opened yet: the first call opens it
        pool.timeout = float(self.env.get(STORE_TIMEOUT) or pool.timeout)
        pool.reconnect_timeout = pool.timeout
        if isinstance(pool.kwargs, dict):  # libpq's own wait for a new connection (TCP)
            pool.kwargs["connect_timeout"] = max(2, math.ceil(pool.timeout))
