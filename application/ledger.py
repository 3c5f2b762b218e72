"""The one eventsourcing Application that holds every aggregate: one totally ordered log."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import JSONTranscoder, Notification
from eventsourcing.popo import POPOApplicationRecorder

from application import topics
from application.transcoder import LedgerTranscoder

CLOSE_GRACE_SECONDS = 5.0  # how long close() waits for calls running in other threads
CLOSE_POLL_SECONDS = 0.01  # it looks this often (a bound by count: it reads no clock)



class Ledger(Application[Any]):
    """Every aggregate of every team lives here; a notification id is a global ``position``."""

    name = "taskwarden"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        topics.register()  # the old topics of moved classes resolve before anything is read
        super().__init__(env=env)

    def construct_transcoder(self) -> JSONTranscoder:
        """eventsourcing's JSON transcoder, reading with msgspec (``application/transcoder.py``):
        the same events from the same stored bytes, decoded faster."""
        transcoder = LedgerTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    @property
    def events_table(self) -> str:
        """The events table's name: the SQLite and Postgres recorders both have one, the
        recorder interface they share does not ("" in memory: no table)."""
        return str(getattr(self.recorder, "events_table_name", ""))

    close_grace: float = CLOSE_GRACE_SECONDS

    def close(self) -> None:
        """Waits (at most ``close_grace`` seconds) for calls still running in other threads to
        give their connections back, then closes. eventsourcing's pool closes the connections in
        use too, and closing a SQLite connection while another thread executes on it crashes the
        process: a background check cancelled at shutdown leaves its thread running (seen once,
        a ``max_position`` during an app's shutdown)."""
        pool = getattr(getattr(self.recorder, "datastore", None), "pool", None)
        if pool is not None and hasattr(pool, "num_in_use"):  # SQLite (psycopg's pool differs)
            for _ in range(math.ceil(self.close_grace / CLOSE_POLL_SECONDS)):
                if not pool.num_in_use:
                    break
                time.sleep(CLOSE_POLL_SECONDS)
        super().close()

    def max_position(self) -> int:
        return int(self.recorder.max_notification_id() or 0)

    def notifications(self, after: int, limit: int) -> Sequence[Notification]:
        """The next ``limit`` stored events after position ``after``, not decoded."""
        return self.recorder.select_notifications(after, limit, inclusive_of_start=False)

    def decode(self, notification: Notification) -> DomainEventProtocol[Any]:
        """The domain event of a stored one; raises if this version cannot read it."""
        return self.mapper.to_domain_event(notification)

    def first_event(self, aggregate_id: Any) -> Any | None:
        """An aggregate's first event, or None (the aggregate itself may no longer load)."""
        return next(iter(self.events.get(aggregate_id, limit=1)), None)

    def positions_of(self, aggregate_id: Any) -> dict[int, int]:
        """Maps each version of an aggregate to its position in the one ordered log."""
        recorder: Any = self.recorder
        if isinstance(recorder, POPOApplicationRecorder):  # in memory: position = index + 1
            with recorder._database_lock:  # its own index of versions (it has no query for it)
                index = dict(recorder._stored_events_index.get(str(aggregate_id), {}))
            return {version: at + 1 for version, at in index.items()}
        table = recorder.events_table_name
        if hasattr(recorder.datastore, "schema"):  # Postgres
            statement = (
                f"SELECT originator_version, notification_id FROM {table} "  # noqa: S608
                "WHERE originator_id = %s"
            )
            with recorder.datastore.transaction(commit=False) as curs:
                curs.execute(statement, (aggregate_id,))
                rows = curs.fetchall()
            return {r["originator_version"]: r["notification_id"] for r in rows}
        statement = f"SELECT originator_version, rowid FROM {table} WHERE originator_id = ?"  # noqa: S608
        with recorder.datastore.transaction(commit=False) as curs:
            key = aggregate_id.hex if hasattr(aggregate_id, "hex") else str(aggregate_id)
            curs.execute(statement, (key,))
            return {row[0]: row[1] for row in curs.fetchall()}
