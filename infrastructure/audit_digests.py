"""The ledger's recorders, each also writing the running digest of the log with every transaction.

Each insert of events also records one pair ``(position, digest)``, in the same database
transaction as the events: ``position`` is the transaction's last event's, ``digest`` the hash
chain (``application.audit.chain``) over every stored event up to it, from ``GENESIS``. It is
computed from the previous digest (the one at the greatest position) and this transaction's events
only, so its cost does not grow with the log. It is kept on the events table's own row at that
position (column ``digest``, null on a transaction's other rows: no second table written per
transaction); in memory in a list in the recorder. The recorders give the transaction's positions
(the ones after the last stored row) while they hold the write lock (Postgres: ``LOCK TABLE ... IN
EXCLUSIVE MODE``, which also makes positions follow the commit order; SQLite: the database's one
write lock), so concurrent writers chain one after the other, and compute the digest before the
insert that writes it. A transaction whose digest cannot be written is not written at all: an
event is never stored without its digest.

``taskwarden migrate`` adds the column (moving the digests of the version before, kept in a table
``tw_audit_digests``, onto their rows) and, for events stored before there were digests (or after
the last one: written around the recorder), chains them once and records one digest at the head
(``backfill_digests``). Until then a write to a store not migrated fails.
"""

from __future__ import annotations

import hashlib
import sqlite3
import weakref
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    Notification,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.popo import POPOApplicationRecorder, POPOFactory
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteFactory
from psycopg.pq import ConnStatus, ExecStatus
from psycopg.sql import SQL, Identifier, Literal

from application.audit.chain import (
    GENESIS,
    canonical_of,
    chain,
    link,
    links,
)
from infrastructure import unchanged
from infrastructure.postgres_event_store import (
    BoundedApplicationRecorder,
    BoundedPostgresFactory,
    _within_the_bound,
)
from infrastructure.snapshot_store import PostgresSnapshotRecorder, SQLiteSnapshotRecorder

TABLE = "tw_audit_digests"
BACKFILL_BATCH = 1_000


def chain_stored(
    previous: str,
    positions: Sequence[int],
    events: Sequence[StoredEvent],
    *,
    ascending: bool = False,
) -> str:
    """The digest after stored events just inserted at ``positions``, chained in position order
    (``ascending``: the positions are known to be in order already)."""
    pairs: Iterable[tuple[int, StoredEvent]] = zip(positions, events, strict=True)
    if not ascending and list(positions) != sorted(positions):
        pairs = sorted(pairs, key=lambda pair: pair[0])
    records = (
        canonical_of(p, e.originator_id, e.originator_version, e.topic, e.state) for p, e in pairs
    )
    return links(previous, records)


class _Reader(Protocol):
    def select_notifications(
        self, start: int, limit: int, *, inclusive_of_start: bool = True
    ) -> Sequence[Notification]: ...


def _chain_after(recorder: _Reader, head: tuple[int, str] | None) -> tuple[int, str] | None:
    """The head after chaining every stored event after ``head`` (None: nothing after it)."""
    after, digest = head or (0, GENESIS)
    last = None
    while batch := recorder.select_notifications(after, BACKFILL_BATCH, inclusive_of_start=False):
        digest = chain(digest, batch)
        after = last = batch[-1].id
    return None if last is None else (last, digest)


class DigestPOPORecorder(POPOApplicationRecorder):
    """In memory: the digests beside the events, under the recorder's one lock."""

    def __init__(self) -> None:
        super().__init__()
        self._digests: list[tuple[int, str]] = []

    def _insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        with self._database_lock:
            relied = unchanged.expected(kwargs)
            if relied:
                index = self._stored_events_index
                current = {k: max(index.get(str(k)) or [0]) for k in relied}
                unchanged.check(relied, current, stored_events)
            positions = super()._insert_events(stored_events, **kwargs)
            if positions:
                previous = self._digests[-1][1] if self._digests else GENESIS
                digest = chain_stored(previous, positions, stored_events)
                self._digests.append((max(positions), digest))
            return positions

    def digest_head(self) -> tuple[int, str] | None:
        with self._database_lock:
            return self._digests[-1] if self._digests else None

    def select_digests(self, after: int, limit: int) -> list[tuple[int, str]]:
        with self._database_lock:
            return [d for d in self._digests if d[0] > after][:limit]

    def backfill_digests(self) -> tuple[int, str] | None:
        with self._database_lock:  # nothing in memory is older than its recorder
            found = _chain_after(self, self._digests[-1] if self._digests else None)
            if found:
                self._digests.append(found)
            return found


class DigestPOPOFactory(POPOFactory):
    """``PERSISTENCE_MODULE`` for the ledger in memory."""

    def application_recorder(self) -> ApplicationRecorder:
        return DigestPOPORecorder()


class DigestSQLiteRecorder(SQLiteApplicationRecorder):
    """SQLite: the digest in the events table, on the last row of each transaction (column
    ``digest``, null on the others), as on Postgres. Positions are the table's rowids.

    A transaction writes its rows at the positions right after the head this recorder last
    committed (``_head``, remembered once the commit is done), the last row with the digest
    chained from that head's, with explicit rowids: nothing is read. If the first of those
    positions is taken, another writer (connection, process) committed since: the whole
    transaction is rolled back and written again, this time taking the write lock first (a write
    that changes nothing), reading the last row's position and the last digest under it, and
    writing at the positions after them. So does a recorder that remembers no head yet.

    The digest's own row in a table of its own (``tw_audit_digests``, the version before) cost a
    one-event save 13 to 17 % more than eventsourcing's recorder on this machine
    (bench/audit_digest.py): another B-tree page written at each commit, and its statement.
    ``taskwarden migrate`` moves those rows onto their events (``_create_table``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head: tuple[int, str] | None = None  # the last digest this recorder committed
        table = self.events_table_name
        self._insert_at = (
            f"INSERT INTO {table} (rowid, originator_id, originator_version, topic, state, "  # noqa: S608
            "digest) VALUES (?, ?, ?, ?, ?, ?)"
        )
        self._lock = f"UPDATE {table} SET digest = NULL WHERE rowid < 0"  # noqa: S608
        self._last = f"SELECT max(rowid) FROM {table}"  # noqa: S608
        digested = f"SELECT rowid, digest FROM {table} WHERE digest IS NOT NULL "  # noqa: S608
        self._select_head = digested + "ORDER BY rowid DESC LIMIT 1"
        self._select_digests = digested + "AND rowid > ? ORDER BY rowid LIMIT ?"
        self._write_digest = f"UPDATE {table} SET digest = ? WHERE rowid = ?"  # noqa: S608

    def _create_table(self, c: SQLiteCursor) -> None:
        """eventsourcing's tables, then the digest column and the digests of the version before
        moved onto their rows, in the same transaction (a digest whose row is gone stops it)."""
        super()._create_table(c)
        table = self.events_table_name
        c.execute(f"PRAGMA table_info({table})")
        if "digest" not in {row[1] for row in c.fetchall()}:
            c.execute(f"ALTER TABLE {table} ADD COLUMN digest TEXT")
        c.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,))
        if c.fetchone() is None:
            return
        c.execute(
            f"SELECT count(*), count(e.rowid) FROM {TABLE} d "  # noqa: S608
            f"LEFT JOIN {table} e ON e.rowid = d.position"
        )
        total, found = c.fetchone()
        if found != total:
            msg = f"{total - found} of the digests in {TABLE} are at positions with no stored event"
            raise ProgrammingError(msg)
        c.execute(
            f"UPDATE {table} SET digest = (SELECT d.digest FROM {TABLE} d "  # noqa: S608
            f"WHERE d.position = {table}.rowid) "
            f"WHERE rowid IN (SELECT position FROM {TABLE})"
        )
        c.execute(f"DROP TABLE {TABLE}")

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        # everything that needs no lock is done before the transaction: inside it, after each
        # wait on the database, the same Python ran two to three times slower
        head = self._head
        plan = _plan(head, stored_events) if head is not None else None
        if plan is not None:
            try:
                return self._write(plan, stored_events, kwargs)
            except IntegrityError as error:
                if not _rowid_taken(error):
                    raise
        return self._write(None, stored_events, kwargs)  # another writer came between

    def _write(
        self,
        plan: _Plan | None,
        stored_events: Sequence[StoredEvent],
        kwargs: dict[str, Any],
    ) -> list[int]:
        """One transaction: the rows as planned after the remembered head, or (no plan) after
        the head read under the write lock."""
        with self.datastore.transaction(commit=True) as c:
            if plan is None:  # the write lock first (a write that changes nothing), then the head
                c.execute(self._lock)
                c.execute(self._last)
                last = c.fetchone()[0] or 0
                c.execute(self._select_head)
                found = c.fetchone()
                plan = _plan((last, found[1] if found else GENESIS), stored_events)
            if len(plan.rows) == 1:  # executemany costs more for one row
                c.execute(self._insert_at, plan.rows[0])  # its rowid taken: IntegrityError
            else:
                c.executemany(self._insert_at, plan.rows)  # the first rowid taken: the same
            relied = unchanged.expected(kwargs)
            if relied:  # after the inserts, which hold the write lock: raising rolls them back
                keys = [k.hex for k in relied]
                c.execute(
                    f"SELECT originator_id, MAX(originator_version) FROM {self.events_table_name} "  # noqa: S608
                    f"WHERE originator_id IN ({', '.join('?' for _ in keys)}) "
                    "GROUP BY originator_id",
                    keys,
                )
                current = {UUID(row[0]): row[1] for row in c.fetchall()}
                unchanged.check(relied, current, ())
        self._head = (plan.positions[-1], plan.digest)  # committed
        return plan.positions

    def digest_head(self) -> tuple[int, str] | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._select_head)
            found = c.fetchone()
        return (found[0], found[1]) if found else None

    def select_digests(self, after: int, limit: int) -> list[tuple[int, str]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._select_digests, (after, limit))
            return [(row[0], row[1]) for row in c.fetchall()]

    def backfill_digests(self) -> tuple[int, str] | None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(self._lock)  # a write first: no event lands while the chain is read
            c.execute(self._select_head)
            row = c.fetchone()
            head = (row[0], row[1]) if row else None
            found = _chain_after(_CursorReader(self, c), head)
            if found:
                c.execute(self._write_digest, (found[1], found[0]))
            return found


class _Plan(NamedTuple):
    """A SQLite transaction's rows at the positions after a head, the last with its digest."""

    positions: list[int]
    rows: list[tuple[Any, ...]]
    digest: str


def _plan(head: tuple[int, str], events: Sequence[StoredEvent]) -> _Plan:
    last, previous = head
    # most transactions: the same in fewer steps. Measured in review (bench/audit_digest.py,
    # SQLite single saves, three runs each): 3.8-9.8 % slower with the digest, 10.3-14.1 %
    # with the general path alone
    if len(events) == 1:
        e = events[0]
        position = last + 1
        record = canonical_of(position, e.originator_id, e.originator_version, e.topic, e.state)
        digest = link(previous, record)
        key = e.originator_id.hex if isinstance(e.originator_id, UUID) else e.originator_id
        return _Plan(
            [position], [(position, key, e.originator_version, e.topic, e.state, digest)], digest
        )
    positions = list(range(last + 1, last + 1 + len(events)))
    rows: list[tuple[Any, ...]] = []
    records = []
    for position, e in zip(positions, events, strict=True):
        key = e.originator_id.hex if isinstance(e.originator_id, UUID) else e.originator_id
        rows.append((position, key, e.originator_version, e.topic, e.state, None))
        records.append(
            canonical_of(position, e.originator_id, e.originator_version, e.topic, e.state)
        )
    digest = links(previous, records)
    rows[-1] = (*rows[-1][:5], digest)
    return _Plan(positions, rows, digest)


def _rowid_taken(error: BaseException) -> bool:
    """Whether an insert failed on a rowid another writer took (SQLite's own error code), not
    on a stored aggregate version (a conflict the caller must hear of)."""
    cause = error.__cause__
    return (
        isinstance(cause, sqlite3.IntegrityError)
        and cause.sqlite_errorcode == sqlite3.SQLITE_CONSTRAINT_ROWID
    )


class _CursorReader:
    """``select_notifications`` of a SQLite recorder, in a transaction already open."""

    def __init__(self, recorder: DigestSQLiteRecorder, cursor: SQLiteCursor) -> None:
        self._recorder, self._cursor = recorder, cursor

    def select_notifications(
        self, start: int, limit: int, *, inclusive_of_start: bool = True
    ) -> list[Notification]:
        table = self._recorder.events_table_name
        op = ">=" if inclusive_of_start else ">"
        self._cursor.execute(
            f"SELECT rowid, * FROM {table} WHERE rowid {op} ? ORDER BY rowid LIMIT ?",  # noqa: S608
            (start, limit),
        )
        return [
            Notification(
                id=row["rowid"],
                originator_id=self._recorder.convert_originator_id(row["originator_id"]),
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=row["state"],
            )
            for row in self._cursor.fetchall()
        ]


class DigestSQLiteFactory(SQLiteFactory):
    """``PERSISTENCE_MODULE`` for the ledger on SQLite."""

    application_recorder_class = DigestSQLiteRecorder
    aggregate_recorder_class = SQLiteSnapshotRecorder  # the snapshots' (no digest)


class DigestPostgresRecorder(BoundedApplicationRecorder):
    """Postgres: the digest in the events table itself, on the last row of each transaction
    (column ``digest``, null on the others), the transaction sent as three messages.

    1. ``BEGIN; SET LOCAL lock_timeout ...; LOCK TABLE ... IN EXCLUSIVE MODE; NOTIFY ...;
       EXECUTE tw_digest_head_...``: one simple query, one round trip (the connection is in
       autocommit, so the transaction is this ``BEGIN``'s). The prepared head statement reads,
       after the lock, the last stored row: its position, and its digest (the last digested
       row's, if the last row has none: written around this recorder).
    2. The insert of the rows at the positions after it (a prepared statement, binary arrays),
       the digest computed beforehand on the last row; with ``relied`` versions
       (``infrastructure.unchanged``) the statement also returns the relied-on aggregates'
       versions as they were before the insert, checked before anything commits.
    3. ``COMMIT``.

    The first and the last go through libpq's ``PQexec`` (``simple_query``), not a cursor.

    Positions are given here, not by the column's sequence: under the table's lock they follow
    the commit order without gaps (as SQLite's rowids do), and the digest can be computed before
    the insert, so it adds no statement and no second relation to the transaction. The column's
    default is dropped (``sql_create_statements``), so a writer that does not give positions
    (eventsourcing's own recorder, a version before this one) is refused rather than store an
    event without a digest. ``taskwarden migrate`` adds the column and moves the digests of the
    version before, kept in a table of their own (``tw_audit_digests``), onto their rows.

    The digest's share of a one-event save, against the same transaction without a digest
    (bench/audit_digest.py): 17.5 % with its own row in ``tw_audit_digests`` (that row's insert
    and its statement's parse at the commit, and the previous digest read from that table),
    7 to 11 % this way (docs/performance.md). Anything that fails rolls the transaction back
    (the pool's connection context does, psycopg's ``Connection.__exit__``), so an event is
    never stored without its digest."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schema = self.datastore.schema
        events = Identifier(schema, self.events_table_name)
        self.sql_create_statements += _layout_statements(events, schema)
        digested = SQL(
            "SELECT notification_id AS position, digest FROM {0} WHERE digest IS NOT NULL "
        ).format(events)
        self._select_head = digested + SQL("ORDER BY notification_id DESC LIMIT 1")
        self._select_digests = digested + SQL(
            "AND notification_id > %s ORDER BY notification_id LIMIT %s"
        )
        self._write_digest = SQL("UPDATE {0} SET digest = %s WHERE notification_id = %s").format(
            events
        )
        self._head = SQL(  # coalesce evaluates its subquery only when the last row has no digest
            "SELECT notification_id AS last, coalesce(digest, (SELECT digest FROM {0} "
            "WHERE digest IS NOT NULL ORDER BY notification_id DESC LIMIT 1)) AS previous "
            "FROM {0} ORDER BY notification_id DESC LIMIT 1"
        ).format(events)
        id_type = SQL(self.datastore.originator_id_type)  # uuid or text: checked by the datastore
        # the rows as binary arrays, not eventsourcing's one array of a composite type: psycopg
        # writes a composite array as escaped text in Python, about 60 us of CPU per event
        # against 14 (bench/append.py, group commit); unnest keeps the arrays' order, and each
        # row's ordinality gives its position after the last (the first parameter) and marks the
        # transaction's last row, the one that carries the digest (the second and third)
        insert = SQL(
            "INSERT INTO {0} (notification_id, originator_id, originator_version, topic, state, "
            "digest) SELECT %b::bigint + o, i, v, t, s, CASE WHEN o = %b::bigint THEN %b::text END "
            "FROM unnest(%b::{1}[], %b::bigint[], %b::text[], %b::bytea[]) "
            "WITH ORDINALITY AS u (i, v, t, s, o)"
        ).format(events, id_type)
        self._insert = insert
        # relied-on versions read in the statement that inserts: its CTEs all see the tables as
        # they were before the insert, after the lock (the message before)
        self._insert_relied = (
            SQL(
                "WITH versions AS (SELECT originator_id AS id, MAX(originator_version) AS version "
                "FROM {0} WHERE originator_id = ANY(%s) GROUP BY originator_id), inserted AS ("
            ).format(events)
            + insert
            + SQL(
                " RETURNING 1) SELECT (SELECT array_agg(id) FROM versions) AS relied_ids, "
                "(SELECT array_agg(version) FROM versions) AS relied_versions"
            )
        )
        self._texts: _Statements | None = None

    def _statements(self, conn: Any) -> _Statements:
        """The transaction's statements as text, composed once (one object, set once, so threads
        never see half of it): psycopg composes an ``SQL`` object again on every execute."""
        if self._texts is None:
            head = _text(self._head, conn)
            name = "tw_digest_head_" + hashlib.sha256(head.encode()).hexdigest()[:16]
            begin = [
                "BEGIN",
                # eventsourcing's _lock_table (SET LOCAL lock_timeout, LOCK TABLE ... EXCLUSIVE)
                # and _notify_channel
                *(_text(sql, conn) for sql in self.lock_table_statements),
                _text(SQL("NOTIFY {0}").format(Identifier(self.channel_name)), conn),
                f"EXECUTE {name}",
            ]
            self._texts = _Statements(
                begin="; ".join(begin).encode(),
                prepare_head=f"PREPARE {name} AS {head}",
                head_name=name,
                insert=_text(self._insert, conn),
                insert_relied=_text(self._insert_relied, conn),
            )
        return self._texts

    def _insert_with_digest(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if self.datastore.enable_db_functions:  # its function inserts without a digest
            msg = "POSTGRES_ENABLE_DB_FUNCTIONS would write events without their digest"
            raise NotImplementedError(msg)
        if not stored_events:
            return None
        relied = unchanged.expected(kwargs)
        with self.datastore.get_connection() as conn:
            sql = self._statements(conn)
            with conn.cursor() as curs:
                try:
                    return self._write(conn, curs, sql, stored_events, relied)
                except BaseException:
                    # the rollback that follows makes psycopg send DEALLOCATE ALL (its own
                    # prepared statements' state is lost with a rollback, it holds): ours too
                    _prepared.get(conn, set()).discard(sql.head_name)
                    raise

    def _write(
        self,
        conn: Any,
        curs: Any,
        sql: _Statements,
        stored_events: Sequence[StoredEvent],
        relied: Any,
    ) -> list[int]:
        """The transaction's three messages (the class's docstring)."""
        last, previous = _begin(conn, sql)
        positions = list(range(last + 1, last + 1 + len(stored_events)))
        digest = chain_stored(previous or GENESIS, positions, stored_events, ascending=True)
        columns = (
            last,
            len(stored_events),
            digest,
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        )
        if relied:
            curs.execute(sql.insert_relied, (list(relied), *columns), prepare=True)
            found = curs.fetchone() or {}
            ids, versions = found.get("relied_ids"), found.get("relied_versions")
            current = dict(zip(ids or (), versions or (), strict=True))
            unchanged.check(relied, current, stored_events)
        else:
            curs.execute(sql.insert, columns, prepare=True)
        simple_query(conn, b"COMMIT")
        return positions

    insert_events = _within_the_bound(_insert_with_digest)

    def digest_head(self) -> tuple[int, str] | None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:  # autocommit
            curs.execute(self._select_head)
            found = curs.fetchone()
        return (found["position"], found["digest"]) if found else None

    def select_digests(self, after: int, limit: int) -> list[tuple[int, str]]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:  # autocommit
            curs.execute(self._select_digests, (after, limit))
            return [(row["position"], row["digest"]) for row in curs.fetchall()]

    def backfill_digests(self) -> tuple[int, str] | None:
        with self.datastore.transaction(commit=True) as curs:
            self._lock_table(curs)  # no event lands while the chain is read
            curs.execute(self._select_head)
            row = curs.fetchone()
            head = (row["position"], row["digest"]) if row else None
            found = _chain_after(self, head)  # reads on other connections: nothing can change
            if found:
                curs.execute(self._write_digest, (found[1], found[0]))
            return found


def _layout_statements(events: Identifier, schema: str) -> list[Any]:
    """What ``taskwarden migrate`` runs after eventsourcing's own table statements: the digest
    column, no default position, and the version before's digests moved onto their rows (a
    digest whose row is gone stops the migration: the table is kept, nothing is lost)."""
    old = Identifier(schema, TABLE)
    return [
        SQL("ALTER TABLE {0} ADD COLUMN IF NOT EXISTS digest text").format(events),
        SQL("ALTER TABLE {0} ALTER COLUMN notification_id DROP DEFAULT").format(events),
        SQL(
            "DO $$ DECLARE moved bigint; BEGIN "
            "IF to_regclass({name}) IS NULL THEN RETURN; END IF; "
            "UPDATE {events} e SET digest = d.digest FROM {old} d "
            "WHERE e.notification_id = d.position; "
            "GET DIAGNOSTICS moved = ROW_COUNT; "
            "IF moved <> (SELECT count(*) FROM {old}) THEN RAISE EXCEPTION "
            "'% of the digests in {table} are at positions with no stored event', "
            "(SELECT count(*) FROM {old}) - moved; END IF; "
            "DROP TABLE {old}; END $$"
        ).format(name=Literal(f"{schema}.{TABLE}"), events=events, old=old, table=SQL(TABLE)),
    ]


# the names of our statements prepared on each connection (a prepared statement lasts as long as
# the server's session: a connection the pool replaces is a new object)
_prepared: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def _begin(conn: Any, sql: _Statements) -> tuple[int, str | None]:
    """Sends the first message (``BEGIN`` ... ``EXECUTE`` the head) and returns the last stored
    position and the last digest, preparing the head statement first on a connection that has
    not got it. A statement gone all the same (deallocated by a rollback elsewhere on this
    connection, as psycopg does on every rollback once it has prepared statements of its own)
    is prepared again and the message sent again, once."""
    names = _prepared.get(conn)
    if names is None:
        names = _prepared[conn] = set()
    for attempt in (1, 2):
        if sql.head_name not in names:
            try:
                conn.execute(sql.prepare_head, prepare=False)  # autocommit: its own statement
            except psycopg.errors.DuplicatePreparedStatement:
                pass  # still there: forgotten after a failure that did not deallocate it
            names.add(sql.head_name)
        try:
            head = simple_query(conn, sql.begin)
        except psycopg.errors.InvalidSqlStatementName:
            names.discard(sql.head_name)
            if attempt == 2:  # noqa: PLR2004
                raise
            conn.rollback()  # out of the aborted BEGIN
            continue
        if not head.ntuples:
            return 0, None
        previous = head.get_value(0, 1)
        return int(head.get_value(0, 0)), previous.decode() if previous is not None else None
    return 0, None  # not reached: the second attempt returns or raises


def simple_query(conn: Any, text: bytes) -> Any:
    """``text`` (our own statements, no parameters) as one simple query through libpq's
    ``PQexec``: the round trip in C with the GIL released, and only the last statement's result
    back, read as it comes, without psycopg's cursor machinery (about 30 µs of CPU less per
    transaction for the first message and the ``COMMIT``, most of it the cursor's handling of
    each statement's result, run slowly just after the wait). psycopg reads the connection's
    transaction state from libpq, so it sees the transaction this opens. A failure is raised as
    psycopg raises it: the server's error by its SQLSTATE, a lost connection as
    ``OperationalError``."""
    result = conn.pgconn.exec_(text)
    if result.status in (ExecStatus.TUPLES_OK, ExecStatus.COMMAND_OK):
        return result
    message = (result.error_message or b"").decode(errors="replace").strip()
    if conn.pgconn.status != ConnStatus.OK:
        raise psycopg.OperationalError(message or "the connection was lost")
    raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)


class _Statements(NamedTuple):
    """``DigestPostgresRecorder``'s transaction, as text."""

    begin: bytes  # BEGIN, the lock, NOTIFY, the head: one simple query
    prepare_head: str  # PREPARE of the head statement, once per connection
    head_name: str
    insert: str
    insert_relied: str  # the insert, also returning the relied-on aggregates' versions


def _text(statement: Any, conn: Any) -> str:
    """A statement as text: composed with the connection's quoting if it is an ``SQL`` object."""
    return statement if isinstance(statement, str) else str(statement.as_string(conn))


class DigestPostgresFactory(BoundedPostgresFactory):
    """``PERSISTENCE_MODULE`` for the ledger on Postgres."""

    application_recorder_class = DigestPostgresRecorder
    aggregate_recorder_class = PostgresSnapshotRecorder  # the snapshots' (no digest)


def backfill_digests(ledger: Any) -> tuple[int, str] | None:
    """Chains the events stored after the last digest row (all of them before there was one)
    and writes one row at the head; None if every event is digested (``taskwarden migrate``)."""
    recorder = ledger.recorder
    if not hasattr(recorder, "backfill_digests"):
        return None  # a ledger without digests (the benchmark's baseline)
    found: tuple[int, str] | None = recorder.backfill_digests()
    return found
