"""The read models in one SQLite file (WAL), searched through FTS5 tables.

Connections come from a bounded pool (``POOL_SIZE``), whatever the number of threads. ``apply``
runs under ``BEGIN IMMEDIATE``, so two runners (threads or processes) over the same file take turns
and each event is applied once.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec

from infrastructure.sql_cost_views import cost_schema
from infrastructure.sql_execution_views import execution_schema
from infrastructure.sql_fact_views import fact_schema
from infrastructure.sql_listing import task_indexes
from infrastructure.sql_member_views import member_schema
from infrastructure.sql_rows import project_columns, task_columns
from infrastructure.sql_search import TASK_FIELDS, Fragment
from infrastructure.sql_timeline_views import timeline_schema
from infrastructure.sql_views import SqlReadModel
from projections.rows import ProjectRow, TaskQuery, TaskRow
from projections.search import Term, index_text, parse

BUSY_TIMEOUT_SECONDS = 30.0
POOL_SIZE = 6  # connections at most; more threads than that wait for one (2 cores serve them)
FTS_OPTIONS = "tokenize = 'unicode61 remove_diacritics 0'"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS tw_tracking (name TEXT PRIMARY KEY, position INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS tw_tasks (
        rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, team_id TEXT NOT NULL,
        project_id TEXT NOT NULL, status TEXT NOT NULL, priority INTEGER NOT NULL,
        title TEXT NOT NULL, assigned_to TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        actual_duration REAL, tags TEXT NOT NULL, data TEXT NOT NULL)""",
    *task_indexes(""),
    "CREATE VIRTUAL TABLE IF NOT EXISTS tw_tasks_fts USING fts5("
    f"title, description, tags, {FTS_OPTIONS})",
    """CREATE TABLE IF NOT EXISTS tw_projects (
        rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, team_id TEXT NOT NULL,
        status TEXT NOT NULL, created_by TEXT NOT NULL, name TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, data TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS tw_projects_team_created ON tw_projects (team_id, created_at)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS tw_projects_fts USING fts5("
    f"name, description, {FTS_OPTIONS})",
    """CREATE TABLE IF NOT EXISTS tw_activity (
        position INTEGER PRIMARY KEY, team_id TEXT NOT NULL, project_id TEXT NOT NULL,
        task_id TEXT, data TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS tw_activity_project ON tw_activity (team_id, project_id, position)",
    "CREATE INDEX IF NOT EXISTS tw_activity_task ON tw_activity (task_id)",
    *cost_schema(big="INTEGER"),
    *execution_schema(real="REAL", big="INTEGER"),
    *fact_schema(real="REAL", big="INTEGER"),
    *member_schema(big="INTEGER"),
    *timeline_schema(big="INTEGER"),
)
TASK_UPSERT = (
    "INSERT INTO tw_tasks (id, team_id, project_id, status, priority, title, assigned_to, "
    "created_at, updated_at, actual_duration, tags, data) "
    "VALUES (:id, :team_id, :project_id, :status, :priority, :title, :assigned_to, "
    ":created_at, :updated_at, :actual_duration, :tags, :data) "
    "ON CONFLICT (id) DO UPDATE SET status = excluded.status, priority = excluded.priority, "
    "title = excluded.title, assigned_to = excluded.assigned_to, "
    "updated_at = excluded.updated_at, actual_duration = excluded.actual_duration, "
    "tags = excluded.tags, data = excluded.data RETURNING rid"
)
PROJECT_UPSERT = (
    "INSERT INTO tw_projects (id, team_id, status, created_by, name, created_at, updated_at, data) "
    "VALUES (:id, :team_id, :status, :created_by, :name, :created_at, :updated_at, :data) "
    "ON CONFLICT (id) DO UPDATE SET status = excluded.status, name = excluded.name, "
    "updated_at = excluded.updated_at, data = excluded.data RETURNING rid"
)


class SqliteReadModel(SqlReadModel):
    schema = SCHEMA
    search_first_below = 2_000  # few matches: see _few_matches
    keeps_statistics = False  # never analysed: see _walk_by_status

    def __init__(self, path: Path, pool_size: int = POOL_SIZE) -> None:
        self._path = path
        self._slots = threading.BoundedSemaphore(pool_size)
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        with self._lock:
            self._connections.append(conn)
        return conn

    @contextmanager
    def _lease(self) -> Iterator[sqlite3.Connection]:
        """One of at most ``pool_size`` connections, the most recently used first: each keeps
        SQLite's page cache (up to 2 MB), so a connection per thread of the server's pool (40
        and more) held most of the API process's memory (docs/performance.md, "Memory")."""
        if not self._slots.acquire(timeout=BUSY_TIMEOUT_SECONDS):
            raise sqlite3.OperationalError("every read model connection stayed busy")
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._open()
            try:
                yield conn
            finally:
                self._idle.put(conn)
        finally:
            self._slots.release()

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Cursor]:
        with self._lease() as conn:
            cur = conn.cursor()
            cur.execute(begin)
            try:
                yield cur
            except BaseException:
                if conn.in_transaction:
                    cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                cur.close()

    def _writing(self) -> Any:
        return self._transaction("BEGIN IMMEDIATE")

    def _reading(self) -> Any:
        return self._transaction("BEGIN")

    def migrate(self) -> None:
        with self._transaction("BEGIN IMMEDIATE") as cur:
            indexed = cur.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tw_timeline'"
            ).fetchone()
            for statement in SCHEMA:
                cur.execute(statement)
            self._mark_timeline_start(cur, indexed is not None, self._stored_position(cur))

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._idle = queue.LifoQueue()

    def _sql(self, statement: str) -> str:
        return statement

    def _in(self, column: str, values: list[Any]) -> Fragment:
        return f"{column} IN ({', '.join('?' for _ in values)})", list(values)

    def _has_any_tag(self, tags: list[str]) -> Fragment:
        marks = ", ".join("?" for _ in tags)
        return (
            "EXISTS (SELECT 1 FROM json_each(tw_tasks.tags) "  # noqa: S608 - only placeholders
            f"WHERE json_each.value IN ({marks}))",
            list(tags),
        )

    def _few_matches(self, cur: Any, q: TaskQuery) -> bool:
        """For a search of one term: fewer than ``search_first_below`` tasks of any team match
        it (counted in the full-text index alone)."""
        node = parse(q.search)
        if not isinstance(node, Term):
            return False  # several terms: the planner chooses
        columns = [c for c in TASK_FIELDS.values() if c is not None]
        if node.field is not None:
            columns = [TASK_FIELDS[node.field] or ""]
        expression = self._search_leaf(node, "tasks", columns)[1]
        statement = (
            "SELECT COUNT(*) FROM (SELECT rowid FROM tw_tasks_fts "
            "WHERE tw_tasks_fts MATCH ? LIMIT ?)"
        )
        found = cur.execute(statement, [*expression, self.search_first_below]).fetchone()[0]
        return int(found) < self.search_first_below

    def _counts_with_page(self, q: TaskQuery, plus: str) -> bool:
        """A search of many matches: each statement with ``rid IN (full-text matches)`` builds
        a set of every match first (a common word's 16,000 of 100,000 tasks: about 2 ms), so
        the first page and its count share one (``_counted_page``): 6.0 -> 3.8 ms for a
        project's first page (bench/listings.py's data set)."""
        return bool(q.search) and not plus

    def _search_leaf(self, term: Term, table: str, columns: list[str]) -> Fragment:
        expression = "{" + " ".join(columns) + '} : "' + " ".join(term.words) + '"'
        if term.prefix:
            expression += " *"
        fts = f"tw_{table}_fts"
        select = f"SELECT rowid FROM {fts} WHERE {fts} MATCH ?"  # noqa: S608 - a fixed table name
        return f"rid IN ({select})", [expression]

    def _save_tasks(self, cur: Any, rows: list[TaskRow], deleted: list[str]) -> None:
        for key in deleted:
            gone = cur.execute("DELETE FROM tw_tasks WHERE id = ? RETURNING rid", [key]).fetchall()
            for (rid,) in gone:
                cur.execute("DELETE FROM tw_tasks_fts WHERE rowid = ?", [rid])
        for row in rows:
            columns = task_columns(row) | {"tags": msgspec.json.encode(row.tags).decode()}
            rid = cur.execute(TASK_UPSERT, columns).fetchone()[0]
            cur.execute("DELETE FROM tw_tasks_fts WHERE rowid = ?", [rid])
            cur.execute(
                "INSERT INTO tw_tasks_fts (rowid, title, description, tags) VALUES (?, ?, ?, ?)",
                [
                    rid,
                    index_text(row.title),
                    index_text(row.description),
                    index_text(" ".join(row.tags)),
                ],
            )

    def _save_projects(self, cur: Any, rows: list[ProjectRow], deleted: list[str]) -> None:
        for key in deleted:
            gone = cur.execute(
                "DELETE FROM tw_projects WHERE id = ? RETURNING rid", [key]
            ).fetchall()
            for (rid,) in gone:
                cur.execute("DELETE FROM tw_projects_fts WHERE rowid = ?", [rid])
        for row in rows:
            rid = cur.execute(PROJECT_UPSERT, project_columns(row)).fetchone()[0]
            cur.execute("DELETE FROM tw_projects_fts WHERE rowid = ?", [rid])
            cur.execute(
                "INSERT INTO tw_projects_fts (rowid, name, description) VALUES (?, ?, ?)",
                [rid, index_text(row.name), index_text(row.description)],
            )
