"""The one eventsourcing Application that holds every aggregate: one totally ordered log."""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent, Repository
from eventsourcing.domain import DomainEvent, DomainEventProtocol
from eventsourcing.persistence import JSONTranscoder, Notification, Recording, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder

from application import topics
from application.snapshots import (
    SNAPSHOTTED,
    LedgerRepository,
    SnapshotWriter,
    TaskStateAsDict,
    due,
    replay,
)
from application.transcoder import LedgerTranscoder

CLOSE_GRACE_SECONDS = 5.0  # how long close() waits for calls running in other threads
CLOSE_POLL_SECONDS = 0.01  # it looks this often (a bound by count: it reads no clock)
SNAPSHOT_INTERVAL = "SNAPSHOT_INTERVAL"  # events between a task's snapshots; 0 or unset: none


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

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(TaskStateAsDict())  # a task's state, in its snapshots

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[Any]]:
        """eventsourcing's ``save``, taking events (what the committer hands it) without testing
        each against the runtime-checkable ``DomainEventProtocol``: that ``isinstance`` costs 15
        to 50 us per event, a tenth of the group committer's CPU (docs/performance.md, "Execution
        latencies"); a plain class test costs half a microsecond. Anything else (aggregates) goes
        through eventsourcing's own collection."""
        processing_event: ProcessingEvent[Any] = ProcessingEvent()
        if all(isinstance(obj, DomainEvent) for obj in objs):
            processing_event.events.extend(objs)
            processing_event.saved_kwargs.update(kwargs)
        else:
            processing_event.collect_events(*objs, **kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        return recordings

    # ---- snapshots (application/snapshots.py) ------------------------------------------------

    snapshot_writer: SnapshotWriter | None = None

    def construct_repository(self) -> Repository[Any]:
        """eventsourcing's repository, reading a task's newest snapshot when SNAPSHOT_INTERVAL is
        more than 0 (the table exists whenever tables are created: ``ledger_env``), and keeping
        the AGGREGATE_CACHE_MAXSIZE aggregates loaded last (eventsourcing's cache, brought up to
        date from the stored events on each load: what other processes wrote is read, as
        without it)."""
        interval = int(self.env.get(SNAPSHOT_INTERVAL) or 0)
        snapshots = self.snapshots if interval > 0 else None
        intervals = {cls: interval for cls in SNAPSHOTTED} if snapshots else {}
        self.snapshotting_intervals = intervals  # type: ignore[misc]  # per ledger: a setting
        if snapshots is not None:
            self.snapshot_writer = SnapshotWriter(self._take_due_snapshot)
        cache_size = int(self.env.get(self.AGGREGATE_CACHE_MAXSIZE) or 0)  # 0: no cache
        return LedgerRepository(
            self.events,
            snapshot_store=snapshots,
            cache_maxsize=cache_size if cache_size > 0 else None,  # eventsourcing's 0: unbounded
            intervals=self.snapshotting_intervals,
            offer=self._offer_snapshot,
        )

    def _take_snapshots(self, processing_event: ProcessingEvent[Any]) -> None:
        """eventsourcing's step after each ``save``: here the snapshots due are handed to the
        writer's thread (the committer saves events, and no commit waits for a snapshot)."""
        found = due(processing_event.events, self.snapshotting_intervals)
        for aggregate_id, version in found.items():
            self._offer_snapshot(aggregate_id, version)

    def _offer_snapshot(self, aggregate_id: Any, version: int) -> None:
        if self.snapshot_writer is not None:
            self.snapshot_writer.offer(aggregate_id, version)

    def _take_due_snapshot(self, aggregate_id: Any, version: int) -> None:
        self.take_snapshot(aggregate_id, version=version, projector_func=replay)

    def flush_snapshots(self, timeout: float = 5.0) -> bool:
        """Waits until the snapshots due are taken; False if some were not within ``timeout``."""
        return self.snapshot_writer is None or self.snapshot_writer.flush(timeout)

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
        a ``max_position`` during an app's shutdown). The snapshots due are taken first."""
        if self.snapshot_writer is not None:
            self.snapshot_writer.close()
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
            with _reading(recorder) as curs:
                curs.execute(statement, (aggregate_id,))
                rows = curs.fetchall()
            return {r["originator_version"]: r["notification_id"] for r in rows}
        statement = f"SELECT originator_version, rowid FROM {table} WHERE originator_id = ?"  # noqa: S608
        with recorder.datastore.transaction(commit=False) as curs:
            key = aggregate_id.hex if hasattr(aggregate_id, "hex") else str(aggregate_id)
            curs.execute(statement, (key,))
            return {row[0]: row[1] for row in curs.fetchall()}

    def events_of_many(  # noqa: PLR0913
        self,
        ids: Collection[UUID],
        *,
        after: int = 0,
        limit: int = 1000,
        topics: Collection[str] | None = None,
        version: int | None = None,
        upto: int | None = None,
    ) -> list[tuple[int, Any]]:
        """``(position, event)`` of the events of these aggregates after position ``after`` (up
        to ``upto`` if given), in log order, at most ``limit``; only of ``topics`` and at
        ``version`` if given. One query,
        on the (originator_id, originator_version) key: a timeline's page, or the first events
        of a page's actors, without a query per aggregate."""
        if not ids or limit <= 0:
            return []
        rows = self._select_many(list(ids), (after, upto), limit, topics, version)
        return [(position, self.mapper.to_domain_event(stored)) for position, stored in rows]

    def _select_many(  # noqa: PLR0913
        self,
        ids: list[UUID],
        span: tuple[int, int | None],
        limit: int,
        topics: Collection[str] | None,
        version: int | None,
    ) -> list[tuple[int, StoredEvent]]:
        recorder: Any = self.recorder
        after, upto = span
        if isinstance(recorder, POPOApplicationRecorder):
            return _select_in_memory(recorder, ids, span, limit, topics, version)
        postgres = hasattr(recorder.datastore, "schema")
        mark = "%s" if postgres else "?"
        position = "notification_id" if postgres else "rowid"
        if postgres:  # one array each: converting hundreds of parameters costs milliseconds
            parts = ["originator_id = ANY(%s)", f"{position} > %s"]
            params: list[Any] = [ids, after]
            if topics is not None:
                parts.append("topic = ANY(%s)")
                params.append(list(topics))
        else:
            parts = [f"originator_id IN ({', '.join('?' for _ in ids)})", f"{position} > ?"]
            params = [*(i.hex for i in ids), after]
            if topics is not None:
                parts.append(f"topic IN ({', '.join('?' for _ in topics)})")
                params += list(topics)
        if version is not None:
            parts.append(f"originator_version = {mark}")
            params.append(version)
        if upto is not None:
            parts.append(f"{position} <= {mark}")
            params.append(upto)
        table = recorder.events_table_name
        chosen = (  # the page's positions first: the sort carries no state
            f"SELECT {position} FROM {table} WHERE {' AND '.join(parts)} "  # noqa: S608
            f"ORDER BY {position} LIMIT {mark}"
        )
        statement = (
            f"SELECT originator_id, originator_version, topic, state, {position} "  # noqa: S608
            f"FROM {table} WHERE {position} IN ({chosen}) ORDER BY {position}"
        )
        return _fetch(recorder, statement, (*params, limit))

    def events_at(self, positions: Collection[int]) -> list[tuple[int, Any]]:
        """``(position, event)`` of the events at these positions, in log order, read in one
        query on the position's own index (a timeline page the read model's index chose)."""
        if not positions:
            return []
        wanted = sorted(set(positions))
        recorder: Any = self.recorder
        if isinstance(recorder, POPOApplicationRecorder):
            with recorder._database_lock:
                stored = recorder._stored_events
                rows = [(p, stored[p - 1]) for p in wanted if 0 < p <= len(stored)]
        else:
            table = recorder.events_table_name
            params: tuple[Any, ...]
            if hasattr(recorder.datastore, "schema"):  # Postgres: one array parameter
                where, params = "notification_id = ANY(%s)", (wanted,)
                position = "notification_id"
            else:
                where = f"rowid IN ({', '.join('?' for _ in wanted)})"
                params, position = tuple(wanted), "rowid"
            statement = (
                f"SELECT originator_id, originator_version, topic, state, {position} "  # noqa: S608
                f"FROM {table} WHERE {where} ORDER BY {position}"
            )
            rows = _fetch(recorder, statement, params)
        return [(position, self.mapper.to_domain_event(s)) for position, s in rows]


@contextmanager
def _reading(recorder: Any) -> Iterator[Any]:
    """A cursor for one statement that reads. On Postgres outside a transaction, as
    eventsourcing's own reads are (the pool's connections are in autocommit; one statement sees
    one snapshot either way): a transaction cost two more round trips, and the ``ROLLBACK`` that
    ended it made psycopg deallocate every statement prepared on the connection, the event
    store's insert and its head statement among them (``infrastructure.audit_digests``)."""
    if hasattr(recorder.datastore, "schema"):
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            yield curs
    else:
        with recorder.datastore.transaction(commit=False) as curs:
            yield curs


def _fetch(recorder: Any, statement: str, params: tuple[Any, ...]) -> list[tuple[int, StoredEvent]]:
    """Rows of (originator_id, originator_version, topic, state, position) as stored events."""
    postgres = hasattr(recorder.datastore, "schema")
    with _reading(recorder) as curs:
        if postgres:  # the state's bytes as they are, not as hex text to decode
            curs.execute(statement, params, binary=True)
        else:
            curs.execute(statement, params)
        rows = curs.fetchall()
    found = []
    for row in rows:
        values = tuple(row.values()) if isinstance(row, dict) else tuple(row)
        originator = values[0] if postgres else recorder.convert_originator_id(values[0])
        stored = StoredEvent(originator, values[1], values[2], bytes(values[3]))
        found.append((int(values[4]), stored))
    return found


def _select_in_memory(  # noqa: PLR0913
    recorder: POPOApplicationRecorder,
    ids: list[UUID],
    span: tuple[int, int | None],
    limit: int,
    topics: Collection[str] | None,
    version: int | None,
) -> list[tuple[int, StoredEvent]]:
    after, upto = span
    with recorder._database_lock:
        found = [
            (at + 1, recorder._stored_events[at])
            for i in ids
            for v, at in recorder._stored_events_index.get(str(i), {}).items()
            if at + 1 > after
            and (upto is None or at + 1 <= upto)
            and (version is None or v == version)
        ]
    if topics is not None:
        found = [(p, s) for p, s in found if s.topic in topics]
    return sorted(found, key=lambda f: f[0])[:limit]
