"""The read models in Postgres (tables ``tw_*``), searched through weighted tsvector columns.

``apply`` takes a transaction-scoped advisory lock, so two runners take turns and each event is
applied once. A write commits without waiting for its WAL to reach the disk (``synchronous_commit
off`` for that transaction, as the SQLite view's ``synchronous = NORMAL``): a server crash may
lose the last fraction of a second of batches, rows and tracking position together (never one
without the other), and the runner applies them again from the log; the wait for the disk was
most of a catch-up's commit time.

The ``simple`` configuration over pre-tokenised text means no stemming: the same answers as the
SQLite view.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from infrastructure.analytics_views import create_views
from infrastructure.count_estimates import CountEstimates
from infrastructure.sql_cost_views import cost_schema
from infrastructure.sql_execution_views import execution_schema
from infrastructure.sql_fact_views import fact_schema
from infrastructure.sql_listing import task_indexes
from infrastructure.sql_member_views import member_schema
from infrastructure.sql_rows import project_columns, task_columns
from infrastructure.sql_search import Fragment
from infrastructure.sql_timeline_views import timeline_schema
from infrastructure.sql_views import TRACKING_NAME, SqlReadModel
from projections.rows import ProjectRow, TaskRow
from projections.search import Term, index_text

CODE_POINTS = ' COLLATE "C"'  # text sort keys ordered as SQLite orders them
LOCK_KEY = 0x7477_7669_6577  # "twview": one advisory lock for every write of the read models
POOL_TIMEOUT_SECONDS = 3.0  # TASKWARDEN_DATABASE_TIMEOUT_SECONDS
ROWS_IN_JSON = 64  # a batch of more rows for one table is copied (``_insert_rows``)
PIPELINED_EVENTS = 64  # a batch of at most this many events is written in pipeline mode
# ``_transaction``'s first messages: BEGIN and the lock; for ``apply`` also the position, read
# by a statement of its own after the lock (a statement's snapshot is taken as it starts).
# ``_applying`` sends the same statements one by one in pipeline mode
WRITES_BEGIN = (
    "BEGIN",
    f"SELECT pg_advisory_xact_lock({LOCK_KEY:d}), set_config('synchronous_commit', 'off', true)",
)
BEGIN_WRITES = "; ".join(WRITES_BEGIN)
READ_POSITION = f"SELECT position FROM tw_tracking WHERE name = '{TRACKING_NAME}'"  # noqa: S608
TASK_WEIGHTS = {"title": "A", "description": "B", "tags": "C"}
PROJECT_WEIGHTS = {"name": "A", "description": "B"}
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS tw_tracking (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS tw_tasks (
        id TEXT PRIMARY KEY, team_id TEXT NOT NULL, project_id TEXT NOT NULL,
        status TEXT NOT NULL, priority INTEGER NOT NULL, title TEXT NOT NULL, assigned_to TEXT,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, actual_duration DOUBLE PRECISION,
        tags TEXT[] NOT NULL, data TEXT NOT NULL, search TSVECTOR NOT NULL)""",
    *task_indexes(CODE_POINTS),
    "CREATE INDEX IF NOT EXISTS tw_tasks_search ON tw_tasks USING GIN (search)",
    "CREATE INDEX IF NOT EXISTS tw_tasks_tags ON tw_tasks USING GIN (tags)",
    """CREATE TABLE IF NOT EXISTS tw_projects (
        id TEXT PRIMARY KEY, team_id TEXT NOT NULL, status TEXT NOT NULL,
        created_by TEXT NOT NULL, name TEXT NOT NULL, created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL, data TEXT NOT NULL, search TSVECTOR NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS tw_projects_team_created ON tw_projects (team_id, created_at)",
    "CREATE INDEX IF NOT EXISTS tw_projects_search ON tw_projects USING GIN (search)",
    """CREATE TABLE IF NOT EXISTS tw_activity (
        position BIGINT PRIMARY KEY, team_id TEXT NOT NULL, project_id TEXT NOT NULL,
        task_id TEXT, data TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS tw_activity_project ON tw_activity (team_id, project_id, position)",
    "CREATE INDEX IF NOT EXISTS tw_activity_task ON tw_activity (task_id)",
    *cost_schema(big="BIGINT"),
    *execution_schema(real="DOUBLE PRECISION", big="BIGINT"),
    *fact_schema(real="DOUBLE PRECISION", big="BIGINT"),
    *member_schema(big="BIGINT"),
    *timeline_schema(big="BIGINT"),
)
# a batch's task and project rows, each set as one JSON array (``_upsert_rows``): every column,
# and the text of each weighted part of the search vector, pre-tokenised (``index_text``)
TASK_RECORD = """id text, team_id text, project_id text, status text, priority integer,
    title text, assigned_to text, created_at text, updated_at text,
    actual_duration double precision, tags text[], data text, title_index text,
    description_index text, tags_index text"""
TASK_UPSERT = f"""
    INSERT INTO tw_tasks (id, team_id, project_id, status, priority, title, assigned_to,
        created_at, updated_at, actual_duration, tags, data, search)
    SELECT id, team_id, project_id, status, priority, title, assigned_to, created_at,
        updated_at, actual_duration, tags, data,
        setweight(to_tsvector('simple', title_index), 'A')
        || setweight(to_tsvector('simple', description_index), 'B')
        || setweight(to_tsvector('simple', tags_index), 'C')
    FROM json_to_recordset(%s::json) AS r({TASK_RECORD})
    ON CONFLICT (id) DO UPDATE SET status = excluded.status, priority = excluded.priority,
        title = excluded.title, assigned_to = excluded.assigned_to,
        updated_at = excluded.updated_at, actual_duration = excluded.actual_duration,
        tags = excluded.tags, data = excluded.data, search = excluded.search"""  # noqa: S608
PROJECT_RECORD = """id text, team_id text, status text, created_by text, name text,
    created_at text, updated_at text, data text, name_index text, description_index text"""
PROJECT_UPSERT = f"""
    INSERT INTO tw_projects (id, team_id, status, created_by, name, created_at, updated_at, data,
        search)
    SELECT id, team_id, status, created_by, name, created_at, updated_at, data,
        setweight(to_tsvector('simple', name_index), 'A')
        || setweight(to_tsvector('simple', description_index), 'B')
    FROM json_to_recordset(%s::json) AS r({PROJECT_RECORD})
    ON CONFLICT (id) DO UPDATE SET status = excluded.status, name = excluded.name,
        updated_at = excluded.updated_at, data = excluded.data, search = excluded.search"""  # noqa: S608
ROWS_PER_UPSERT = 1_000  # a catch-up's rows of one table travel in arrays of at most this many


class PostgresReadModel(SqlReadModel):
    schema = SCHEMA
    collate = CODE_POINTS

    def __init__(self, url: str, max_size: int = 8, timeout: float = POOL_TIMEOUT_SECONDS) -> None:
        """``timeout``: a read waits this long at most for a connection, then fails (503). The
        pool stops reconnecting in the background after as long (psycopg's default is 5 minutes
        with the pause doubling), so after an outage the next read connects at once."""
        self.estimates = CountEstimates(time.monotonic)  # a test gives it a clock of its own
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            timeout=timeout,
            reconnect_timeout=timeout,
            kwargs={"connect_timeout": max(2, math.ceil(timeout))},
            open=True,
            name="taskwarden-views",
        )

    @contextmanager
    def _writing(self) -> Iterator[Any]:
        with self._transaction(BEGIN_WRITES) as (cur, _):
            yield cur

    @contextmanager
    def _applying(self, count: int) -> Iterator[tuple[Any, Callable[[], int]]]:
        """A live runner's batch (at most ``PIPELINED_EVENTS`` events) is written in psycopg's
        pipeline mode: each statement is sent without waiting for the one before to answer,
        and the connection waits only where a result is read and at the end. Its first
        statements (``BEGIN``, the lock, the stored position) go with the reads ``apply`` asks
        for, one round trip; the writes and the ``COMMIT`` with the next. A live runner's batch
        was about a dozen round trips, one per statement, most of the lag between a commit and
        its rows. An error in any statement is raised all the same, at the next read or at the
        end, and rolls the whole transaction back. A catch-up's larger batch is not pipelined
        (``COPY`` cannot be): ``_transaction``."""
        if count > PIPELINED_EVENTS:
            with self._transaction(f"{BEGIN_WRITES}; {READ_POSITION}") as (cur, found):
                at = int(found[0]) if found else 0
                yield cur, lambda: at
            return
        with self._autocommit() as conn, conn.cursor() as cur:
            with _rolled_back_on_failure(conn), conn.pipeline():
                for statement in WRITES_BEGIN:
                    cur.execute(statement, prepare=False)
                position = conn.cursor()
                position.execute(READ_POSITION)

                def stored() -> int:
                    with position:
                        found = position.fetchone()
                    return int(found[0]) if found else 0

                yield cur, stored
                cur.execute("COMMIT", prepare=False)

    @contextmanager
    def _transaction(self, first: str) -> Iterator[tuple[Any, Any]]:
        """A transaction holding the read models' advisory lock, its first message one simple
        query (``first``: ``BEGIN``, the lock, ``synchronous_commit`` off for it, and for
        ``apply`` the stored position): with psycopg's own transaction its ``BEGIN`` went alone,
        and the position was a statement of its own, two round trips more per batch applied.
        Yields the cursor and the first row of the last statement's result. The transaction is
        this ``BEGIN``'s (the connection is in autocommit): ``COMMIT`` at the end, a rollback on
        any failure."""
        with self._autocommit() as conn, conn.cursor() as cur:
            cur.execute(first, prepare=False)
            cur.set_result(-1)
            found = cur.fetchone()
            with _rolled_back_on_failure(conn):
                yield cur, found
                cur.execute("COMMIT", prepare=False)

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        """A cursor whose statements each read what is committed when it starts, outside any
        transaction: a read's statements never relied on one snapshot (read committed), and a
        transaction cost one more round trip per read to end it."""
        with self._autocommit() as conn, conn.cursor() as cur:
            yield cur

    @contextmanager
    def _autocommit(self) -> Iterator[Any]:
        """A connection of the pool in autocommit while it is lent, then as the pool gives it."""
        with self._pool.connection() as conn:
            conn.autocommit = True
            try:
                yield conn
            finally:
                with contextlib.suppress(psycopg.Error):  # a broken one: the pool discards it
                    conn.autocommit = False

    def refresh_statistics(self) -> None:
        """``VACUUM (ANALYZE)`` of the read model's tables. The planner's statistics: without
        them, as after a rebuild until autovacuum's next round (up to a minute or more), the
        planner guesses: a team's listing of 100,000 tasks read in 105-129 ms against 1.3-2.9 ms
        once analysed (bench/listings.py), and ``total`` is no estimate at all. The visibility
        map: until a page is marked all-visible, an index-only walk (a page by number skipping
        50,000 rows, a bounded count) visits the table for each row it passes: page 1,000 of a
        freshly written project of 100,000 tasks 18.6 ms p95, 6.2 once vacuumed. VACUUM reads
        only the pages not yet marked, so its cost follows what the catch-up wrote (0.66 s for
        100,000 tasks, whose catch-up took 17 s); it cannot run in a transaction."""
        with self._autocommit() as conn, conn.cursor() as cur:
            tables = [
                row[0]
                for row in cur.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                    "AND tablename LIKE 'tw\\_%' AND tablename <> 'tw_audit_digests'"
                ).fetchall()
            ]
            if tables:
                names = sql.SQL(", ").join(map(sql.Identifier, tables))
                cur.execute(sql.SQL("VACUUM (ANALYZE) {}").format(names))

    def migrate(self) -> None:
        with self._writing() as cur:
            indexed = cur.execute("SELECT to_regclass('tw_timeline')").fetchone()[0]
            for statement in SCHEMA:
                cur.execute(statement)
            self._mark_timeline_start(cur, indexed is not None, self._stored_position(cur))
            create_views(cur)  # analytics.*: over the tables, so after them

    def close(self) -> None:
        self._pool.close()

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def _insert_rows(
        self,
        cur: Any,
        table: str,
        columns: tuple[str, ...],
        rows: list[tuple[Any, ...]],
        conflict: str = "",
    ) -> None:
        """A batch's rows (its activity, cost rows, facts, timeline) in one statement, not one per
        row (psycopg converts and prepares each statement text anew). Up to ``ROWS_IN_JSON``
        rows travel as one JSON array read by ``json_populate_recordset`` with the table's own
        column types: one round trip, where ``COPY`` takes two or three and an upsert through
        ``COPY`` a temporary table and two statements more (a live runner's batch is a few
        rows: each round trip is a part of the lag between a commit and its rows). More rows
        (a rebuild, a long catch-up) are copied: a plain insert into the table, an upsert into
        a temporary table of the table's shape (this connection's, emptied at each commit),
        then one ``INSERT ... SELECT``."""
        if not rows:
            return
        names = ", ".join(columns)
        if len(rows) <= ROWS_IN_JSON or cur.connection.pgconn.pipeline_status:  # no COPY there
            cur.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} "  # noqa: S608 - our own names
                f"FROM json_populate_recordset(NULL::{table}, %s::json) {conflict}",
                [
                    msgspec.json.encode(
                        [dict(zip(columns, row, strict=True)) for row in rows]
                    ).decode()
                ],
            )
            return
        target = table
        if conflict:
            target = f"tw_staged_{table}"
            cur.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {target} "
                f"(LIKE {table}) ON COMMIT DELETE ROWS"
            )
        with cur.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        if conflict:
            cur.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {target} {conflict}"  # noqa: S608
            )
            cur.execute(f"DELETE FROM {target}")  # noqa: S608 - a second set in this transaction

    def _ask(self, cur: Any, statement: str, params: list[Any]) -> Callable[[], list[Any]]:
        """In pipeline mode (``_applying``), a cursor of its own per read, its rows fetched when
        called: the first call waits for every read sent before it (one round trip)."""
        conn = cur.connection
        if not conn.pgconn.pipeline_status:
            return super()._ask(cur, statement, params)
        asked = conn.cursor()
        asked.execute(self._sql(statement), params)

        def rows() -> list[Any]:
            with asked:
                return asked.fetchall()

        return rows

    def _in(self, column: str, values: list[Any]) -> Fragment:
        return f"{column} = ANY(?)", [list(values)]

    def _estimate_count(self, cur: Any, where: str, params: list[Any]) -> int | None:
        """The planner's estimate of the matching rows (from the table's statistics)."""
        key = self.estimates.key(where, params)
        if (kept := self.estimates.get(key)) is not None:
            return kept  # the same listing's, a few seconds old (infrastructure/count_estimates)
        statement = f"EXPLAIN (FORMAT JSON) SELECT 1 FROM tw_tasks WHERE {where}"  # noqa: S608
        plan = self._run(cur, statement, params).fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        estimate = int(plan[0]["Plan"]["Plan Rows"])
        self.estimates.put(key, estimate)
        return estimate

    def _has_any_tag(self, tags: list[str]) -> Fragment:
        return "tags && ?::text[]", [list(tags)]

    def _search_leaf(self, term: Term, table: str, columns: list[str]) -> Fragment:
        weights = TASK_WEIGHTS if table == "tasks" else PROJECT_WEIGHTS
        if len(term.words) == 1 and set(columns) == set(weights):
            # a word in any field: every position matches, so no weights to name, and the
            # planner's estimate is the word's own (a rare word is then read from the index)
            return "search @@ to_tsquery('simple', ?)", [term.words[0] + (":*" * term.prefix)]
        alternatives = []
        for column in columns:
            weight = weights[column]
            lexemes = [f"{word}:{weight}" for word in term.words]
            if term.prefix:
                lexemes[-1] = f"{term.words[-1]}:*{weight}"
            alternatives.append("(" + " <-> ".join(lexemes) + ")")
        return "search @@ to_tsquery('simple', ?)", [" | ".join(alternatives)]

    def _save_tasks(self, cur: Any, rows: list[TaskRow], deleted: list[str]) -> None:
        if deleted:
            cur.execute("DELETE FROM tw_tasks WHERE id = ANY(%s)", [deleted])
        _upsert_rows(cur, TASK_UPSERT, [_task_params(row) for row in rows])

    def _save_projects(self, cur: Any, rows: list[ProjectRow], deleted: list[str]) -> None:
        if deleted:
            cur.execute("DELETE FROM tw_projects WHERE id = ANY(%s)", [deleted])
        _upsert_rows(cur, PROJECT_UPSERT, [_project_params(row) for row in rows])


@contextmanager
def _rolled_back_on_failure(conn: Any) -> Iterator[None]:
    """The body of a transaction begun on ``conn`` (in autocommit, by our own ``BEGIN``): any
    failure rolls it back, then is raised."""
    try:
        yield
    except BaseException:
        conn.rollback()
        raise


def _upsert_rows(cur: Any, statement: str, rows: list[dict[str, Any]]) -> None:
    """``statement`` (one ``%s``: a JSON array of rows) for ``rows``, ``ROWS_PER_UPSERT`` at a
    time: one statement for a live runner's batch, where one per row cost psycopg a Bind and an
    Execute each (a batch of creates under load is tens of tasks). The rows differ in id (a
    batch's rows are keyed by it): an upsert cannot touch one row twice."""
    for start in range(0, len(rows), ROWS_PER_UPSERT):
        chunk = rows[start : start + ROWS_PER_UPSERT]
        cur.execute(statement, [msgspec.json.encode(chunk).decode()])


def _task_params(row: TaskRow) -> dict[str, Any]:
    return task_columns(row) | {
        "tags": list(row.tags),
        "title_index": index_text(row.title),
        "description_index": index_text(row.description),
        "tags_index": index_text(" ".join(row.tags)),
    }


def _project_params(row: ProjectRow) -> dict[str, Any]:
    return project_columns(row) | {
        "name_index": index_text(row.name),
        "description_index": index_text(row.description),
    }
