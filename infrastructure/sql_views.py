"""What the SQLite and Postgres views share: the apply flow, the queries, the search combinators.

SQL is written with ``?`` placeholders; a backend translates them. User text only ever travels as a
parameter. A backend supplies its transactions, its writes, and the few fragments that differ.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, NamedTuple

import msgspec

from infrastructure.sql_cost_views import SqlCostViews
from infrastructure.sql_execution_views import SqlExecutionViews
from infrastructure.sql_fact_views import SqlFactViews
from infrastructure.sql_kpi_views import SqlKpiViews
from infrastructure.sql_listing import SqlTaskListing
from infrastructure.sql_member_views import SqlMemberViews
from infrastructure.sql_quarantine import QuarantineWrites
from infrastructure.sql_rows import to_json
from infrastructure.sql_search import PROJECT_FIELDS, TASK_FIELDS, Fragment, search_fragment
from infrastructure.sql_timeline_views import SqlTimelineViews
from projections.batch import Activity, Changes, ExecutionRows, affected_ids, evolve_batch
from projections.rows import (
    ActivityRow,
    Page,
    ProjectQuery,
    ProjectRow,
    ProjectStats,
    TaskRow,
    page_of,
    project_stats,
)
from projections.search import Term
from projections.task_facts import TaskFact

TRACKING_NAME = "views"


class _Loads(NamedTuple):
    """The rows a batch changes, as stored before it, each read when called."""

    tasks: Callable[[], dict[str, TaskRow]]
    projects: Callable[[], dict[str, ProjectRow]]
    execution: Callable[[], ExecutionRows]
    facts: Callable[[], dict[str, TaskFact]]


PROJECT_SORTS = {"name": "name", "created_at": "created_at", "updated_at": "updated_at"}
TEXT_SORTS = frozenset({"name"})
ACTIVITY_COLUMNS = ("position", "team_id", "project_id", "task_id", "data")


class SqlReadModel(
    QuarantineWrites,
    SqlTaskListing,
    SqlCostViews,
    SqlKpiViews,
    SqlFactViews,
    SqlMemberViews,
    SqlTimelineViews,
    SqlExecutionViews,
):
    collate = ""  # appended to text sort columns so both backends order text by code point

    # ---- what a backend supplies ---------------------------------------------------------

    @abstractmethod
    def _writing(self) -> AbstractContextManager[Any]:
        """A cursor in a transaction that holds the write lock of the read model."""

    @abstractmethod
    def _reading(self) -> AbstractContextManager[Any]:
        """A cursor for reads."""

    @abstractmethod
    def _sql(self, statement: str) -> str:
        """The statement with the backend's placeholders."""

    @abstractmethod
    def _in(self, column: str, values: list[Any]) -> Fragment: ...

    @abstractmethod
    def _has_any_tag(self, tags: list[str]) -> Fragment: ...

    @abstractmethod
    def _search_leaf(self, term: Term, table: str, columns: list[str]) -> Fragment:
        """``table`` is ``tasks`` or ``projects``; ``columns`` the searched columns."""

    @abstractmethod
    def _save_tasks(self, cur: Any, rows: list[TaskRow], deleted: list[str]) -> None: ...

    @abstractmethod
    def _save_projects(self, cur: Any, rows: list[ProjectRow], deleted: list[str]) -> None: ...

    # ---- tracking and apply ------------------------------------------------------------------

    def _run(self, cur: Any, statement: str, params: list[Any] | tuple[Any, ...] = ()) -> Any:
        cur.execute(self._sql(statement), params)
        return cur

    def _insert_rows(
        self,
        cur: Any,
        table: str,
        columns: tuple[str, ...],
        rows: list[tuple[Any, ...]],
        conflict: str = "",
    ) -> None:
        """Inserts ``rows`` (values in the order of ``columns``) into ``table``, then
        ``conflict``: an ``ON CONFLICT`` clause that names ``excluded``. The rows must differ in
        the conflict's key. A backend may write them as one set (Postgres: one statement, or
        ``COPY`` for a large batch)."""
        if rows:
            statement = (
                f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - our own names
                f"VALUES ({', '.join('?' for _ in columns)}) {conflict}"
            )
            cur.executemany(self._sql(statement), rows)

    def _stored_position(self, cur: Any) -> int:
        found = self._run(
            cur, "SELECT position FROM tw_tracking WHERE name = ?", [TRACKING_NAME]
        ).fetchone()
        return int(found[0]) if found else 0

    def position(self) -> int:
        with self._reading() as cur:
            return self._stored_position(cur)

    schema: tuple[str, ...] = ()  # the backend's CREATE statements

    def reset(self) -> None:
        tables = [
            m.group(1)
            for statement in self.schema
            if (m := re.match(r"\s*CREATE (?:VIRTUAL )?TABLE IF NOT EXISTS (\w+)", statement))
        ]
        with self._writing() as cur:
            for table in tables:
                self._run(cur, f"DELETE FROM {table}")  # noqa: S608 - names from our own schema

    @contextmanager
    def _applying(self, count: int) -> Iterator[tuple[Any, Callable[[], int]]]:  # noqa: ARG002
        """``_writing`` for ``apply`` of ``count`` events, with the stored position read in it,
        as a call: a backend may send the reads ``apply`` makes before it waits for the
        position (and write a few events otherwise than many)."""
        with self._writing() as cur:
            stored = self._stored_position(cur)
            yield cur, lambda: stored

    def apply(self, events: list[tuple[int, object]], after: int | None = None) -> int:
        with self._applying(len(events)) as (cur, stored_position):
            # the rows of every event are asked for before the stored position is known: on
            # Postgres they go with the transaction's first statements, one round trip for all
            loads = self._loads(cur, events) if events else None
            stored = stored_position()
            if after is not None and stored < after:
                return stored  # reset since the caller read its position: nothing to apply
            fresh = [(p, e) for p, e in events if p > stored]
            if not fresh:
                return stored
            if len(fresh) < len(events):  # another runner applied some: the rows as they are
                loads = None
            return self._write_events(cur, fresh, loads)

    def _loads(self, cur: Any, events: list[tuple[int, Any]]) -> _Loads:
        """The rows ``events`` change, asked for (``SqlBackend._ask``), read when called."""
        task_ids, project_ids = affected_ids(events)
        return _Loads(
            self._loading(cur, "tw_tasks", task_ids, TaskRow),
            self._loading(cur, "tw_projects", project_ids, ProjectRow),
            self._loading_execution(cur, events),
            self._loading_facts(cur, events),
        )

    def _write_events(
        self,
        cur: Any,
        events: list[tuple[int, Any]],
        loads: _Loads | None = None,
        keep: int | None = None,
    ) -> int:
        """Every view's rows for ``events``, in the caller's transaction, and the tracking
        position: the last event's, or ``keep`` (an event applied late leaves it where it is).
        ``loads``: their rows, asked for already; else every read is sent before the first is
        read, then the writes."""
        loads = loads or self._loads(cur, events)
        changes = evolve_batch(events, loads.tasks(), loads.projects(), loads.execution())
        if keep is not None:
            changes.position = keep
        self._write(cur, changes)
        self._write_facts(cur, events, loads.facts())
        self._write_members(cur, events)
        self._write_timeline(cur, events)
        return changes.position

    def _loading(
        self, cur: Any, table: str, ids: set[str], shape: type[Any]
    ) -> Callable[[], dict[str, Any]]:
        if not ids:
            return dict
        where, params = self._in("id", sorted(ids))
        rows = self._ask(cur, f"SELECT data FROM {table} WHERE {where}", params)  # noqa: S608

        def found() -> dict[str, Any]:
            decoded = (msgspec.json.decode(r[0], type=shape) for r in rows())
            return {row.id: row for row in decoded}

        return found

    def _write(self, cur: Any, changes: Changes) -> None:
        tasks = [row for row in changes.tasks.values() if row is not None]
        gone = [key for key, row in changes.tasks.items() if row is None]
        self._save_tasks(cur, tasks, gone)
        projects = [row for row in changes.projects.values() if row is not None]
        gone_projects = [key for key, row in changes.projects.items() if row is None]
        self._save_projects(cur, projects, gone_projects)
        self._save_activity(cur, changes.activity, sorted(changes.deleted_tasks))
        self._write_execution(cur, changes)
        self._write_costs(cur, changes)
        self._run(
            cur,
            "INSERT INTO tw_tracking (name, position) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            [TRACKING_NAME, changes.position],
        )

    def _save_activity(self, cur: Any, entries: list[Activity], deleted_tasks: list[str]) -> None:
        if deleted_tasks:
            where, params = self._in("task_id", deleted_tasks)
            self._run(cur, f"DELETE FROM tw_activity WHERE {where}", params)  # noqa: S608
        self._insert_rows(
            cur,
            "tw_activity",
            ACTIVITY_COLUMNS,
            [
                (a.row.position, a.team_id, a.project_id, a.row.task_id, to_json(a.row))
                for a in entries
            ],
        )

    # ---- queries -----------------------------------------------------------------------------

    def list_projects(self, team_id: str, q: ProjectQuery) -> Page:
        parts, params = ["team_id = ?"], [team_id]
        if q.status:
            part, more = self._in("status", list(q.status))
            parts.append(part)
            params += more
        if q.created_by is not None:
            parts.append("created_by = ?")
            params.append(q.created_by)
        self._add_search(parts, params, q.search, "projects")
        order = self._order(PROJECT_SORTS[q.sort], q.sort in TEXT_SORTS, q.order)
        where = " AND ".join(parts)
        page = self._page("tw_projects", where, params, order, q.page, q.page_size, ProjectRow)
        stats = self._statistics(team_id, [p.id for p in page.items])
        items = [msgspec.structs.replace(p, statistics=stats[p.id]) for p in page.items]
        return msgspec.structs.replace(page, items=items)

    def _order(self, column: str, text: bool, order: str) -> str:
        direction = {"asc": "ASC", "desc": "DESC"}[order]
        collate = self.collate if text else ""
        return f"{column}{collate} {direction}, id {direction}"

    def _page(
        self,
        table: str,
        where: str,
        params: list[Any],
        order: str,
        page: int,
        size: int,
        shape: type[Any],
    ) -> Page:
        with self._reading() as cur:
            count = f"SELECT COUNT(*) FROM {table} WHERE {where}"  # noqa: S608
            total = int(self._run(cur, count, params).fetchone()[0])
            select = (
                f"SELECT data FROM {table} WHERE {where} "  # noqa: S608
                f"ORDER BY {order} LIMIT ? OFFSET ?"
            )
            rows = self._run(cur, select, [*params, size, (page - 1) * size]).fetchall()
        items = [msgspec.json.decode(r[0], type=shape) for r in rows]
        return page_of(items, total, page, size)

    def _add_search(
        self, parts: list[str], params: list[Any], text: str | None, table: str
    ) -> None:
        fields = TASK_FIELDS if table == "tasks" else PROJECT_FIELDS
        found = search_fragment(
            text, fields, lambda term, cols: self._search_leaf(term, table, cols)
        )
        if found is not None:
            parts.append(found[0])
            params += found[1]

    def project_statistics(self, team_id: str, project_id: str) -> ProjectStats:
        return self._statistics(team_id, [project_id])[project_id]

    def _statistics(self, team_id: str, project_ids: list[str]) -> dict[str, ProjectStats]:
        counts: dict[str, dict[str, int]] = {p: {} for p in project_ids}
        averages: dict[str, float | None] = {}
        if project_ids:
            where, params = self._in("project_id", project_ids)
            statement = (
                "SELECT project_id, status, COUNT(*), AVG(actual_duration) FROM tw_tasks "  # noqa: S608
                f"WHERE team_id = ? AND {where} GROUP BY project_id, status"
            )
            with self._reading() as cur:
                rows = self._run(cur, statement, [team_id, *params]).fetchall()
            for project_id, status, n, average in rows:
                counts[project_id][status] = int(n)
                if status == "completed":
                    averages[project_id] = None if average is None else float(average)
        return {p: project_stats(counts[p], averages.get(p)) for p in project_ids}

    def recent_activity(self, team_id: str, project_id: str, limit: int = 20) -> list[ActivityRow]:
        statement = (
            "SELECT data FROM tw_activity WHERE team_id = ? AND project_id = ? "
            "ORDER BY position DESC LIMIT ?"
        )
        with self._reading() as cur:
            rows = self._run(cur, statement, [team_id, project_id, limit]).fetchall()
        return [msgspec.json.decode(r[0], type=ActivityRow) for r in rows]

    def task_ids_of_project(self, team_id: str, project_id: str) -> list[str]:
        statement = (
            "SELECT id FROM tw_tasks WHERE team_id = ? AND project_id = ? ORDER BY created_at, id"
        )
        with self._reading() as cur:
            return [r[0] for r in self._run(cur, statement, [team_id, project_id]).fetchall()]

    def ping(self) -> None:
        with self._reading() as cur:
            self._run(cur, "SELECT 1").fetchone()
