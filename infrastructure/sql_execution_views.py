"""The execution read models in SQL, shared by SQLite and Postgres: the queue, HITL items, output.

Rows travel as JSON in ``data``; the columns beside it are the ones filtered and sorted on. Times
are epoch seconds (REAL or DOUBLE PRECISION), so the scheduler compares numbers. Every statement
here is written once, with ``?`` placeholders, and runs on both backends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from infrastructure.sql_backend import SqlBackend
from infrastructure.sql_rows import to_json
from projections.batch import Changes, ExecutionRows, execution_keys
from projections.execution_rows import HitlQuery, HitlRow, OutputRow, QueueRow
from projections.read_model import ReadModel

DUE_KINDS = ("question", "checkpoint")  # an experience waits for nobody: it has no deadline


def execution_schema(real: str, big: str) -> tuple[str, ...]:
    """The tables and indexes, given the backend's names for a float and a position."""
    return (
        f"""CREATE TABLE IF NOT EXISTS tw_queue (
            task_id TEXT PRIMARY KEY, team_id TEXT NOT NULL, state TEXT NOT NULL,
            priority INTEGER NOT NULL, requested_at {real} NOT NULL, data TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS tw_queue_ready "
        "ON tw_queue (state, priority DESC, requested_at)",
        "CREATE INDEX IF NOT EXISTS tw_queue_team ON tw_queue (team_id, requested_at)",
        """CREATE TABLE IF NOT EXISTS tw_queue_options (
            task_id TEXT PRIMARY KEY, data TEXT NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS tw_hitl (
            id TEXT PRIMARY KEY, team_id TEXT NOT NULL, task_id TEXT NOT NULL,
            kind TEXT NOT NULL, status TEXT NOT NULL, deadline {real}, position {big} NOT NULL,
            data TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS tw_hitl_team ON tw_hitl (team_id, position)",
        "CREATE INDEX IF NOT EXISTS tw_hitl_task ON tw_hitl (task_id, position)",
        "CREATE INDEX IF NOT EXISTS tw_hitl_due ON tw_hitl (status, deadline)",
        f"""CREATE TABLE IF NOT EXISTS tw_output (
            position {big} PRIMARY KEY, team_id TEXT NOT NULL, task_id TEXT NOT NULL,
            data TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS tw_output_task ON tw_output (task_id, position)",
    )


# each table's written columns and the clause that settles a row already there
# (``SqlBackend._insert_rows``: a batch's rows as one set where the backend can)
QUEUE_COLUMNS = ("task_id", "team_id", "state", "priority", "requested_at", "data")
QUEUE_CONFLICT = (
    "ON CONFLICT (task_id) DO UPDATE SET team_id = excluded.team_id, state = excluded.state, "
    "priority = excluded.priority, requested_at = excluded.requested_at, data = excluded.data"
)
OPTIONS_COLUMNS = ("task_id", "data")
OPTIONS_CONFLICT = "ON CONFLICT (task_id) DO UPDATE SET data = excluded.data"
HITL_COLUMNS = ("id", "team_id", "task_id", "kind", "status", "deadline", "position", "data")
HITL_CONFLICT = (
    "ON CONFLICT (id) DO UPDATE SET status = excluded.status, deadline = excluded.deadline, "
    "data = excluded.data"
)
OUTPUT_COLUMNS = ("position", "team_id", "task_id", "data")


class SqlExecutionViews(SqlBackend, ReadModel):
    """Mixed into SqlReadModel, which supplies the cursors and the backend's fragments."""

    # ---- apply -------------------------------------------------------------------------------

    def _loading_execution(
        self, cur: Any, events: list[tuple[int, object]]
    ) -> Callable[[], ExecutionRows]:
        """The rows the batch touches, one SELECT per table (not per event), read when called
        (``SqlBackend._ask``)."""
        keys = execution_keys(events)
        queue = self._loading_by(cur, "tw_queue", "task_id", keys.queue, QueueRow)
        options = self._loading_by(cur, "tw_queue_options", "task_id", keys.options, dict)
        hitl = self._loading_by(cur, "tw_hitl", "id", keys.hitl, HitlRow)
        return lambda: ExecutionRows(queue=queue(), options=options(), hitl=hitl())

    def _loading_by(
        self, cur: Any, table: str, key: str, ids: set[str], shape: type[Any]
    ) -> Callable[[], dict[str, Any]]:
        if not ids:
            return dict
        where, params = self._in(key, sorted(ids))
        rows = self._ask(cur, f"SELECT {key}, data FROM {table} WHERE {where}", params)  # noqa: S608
        return lambda: {r[0]: msgspec.json.decode(r[1], type=shape) for r in rows()}

    def _write_execution(self, cur: Any, changes: Changes) -> None:
        """The batch's queue, options, HITL and output rows: one set per table (each keyed by
        what the batch's dicts are keyed by: no two rows of a set share a key)."""
        queue, options = changes.queue, changes.options
        self._delete(cur, "tw_queue", "task_id", [k for k, r in queue.items() if r is None])
        self._insert_rows(
            cur,
            "tw_queue",
            QUEUE_COLUMNS,
            [
                (r.task_id, r.team_id, r.state, r.priority, r.requested_at, to_json(r))
                for r in queue.values()
                if r is not None
            ],
            QUEUE_CONFLICT,
        )
        self._delete(
            cur, "tw_queue_options", "task_id", [k for k, o in options.items() if o is None]
        )
        self._insert_rows(
            cur,
            "tw_queue_options",
            OPTIONS_COLUMNS,
            [(k, to_json(o)) for k, o in options.items() if o is not None],
            OPTIONS_CONFLICT,
        )
        self._insert_rows(
            cur,
            "tw_hitl",
            HITL_COLUMNS,
            [
                (r.id, r.team_id, r.task_id, r.kind, r.status, r.deadline, r.position, to_json(r))
                for r in changes.hitl.values()
            ],
            HITL_CONFLICT,
        )
        self._insert_rows(
            cur,
            "tw_output",
            OUTPUT_COLUMNS,
            [(o.row.position, o.team_id, o.row.task_id, to_json(o.row)) for o in changes.output],
        )

    def _delete(self, cur: Any, table: str, key: str, ids: list[str]) -> None:
        if ids:
            where, params = self._in(key, sorted(ids))
            self._run(cur, f"DELETE FROM {table} WHERE {where}", params)  # noqa: S608

    # ---- the queue ---------------------------------------------------------------------------

    def queued(self, limit: int = 200) -> list[QueueRow]:
        statement = (
            "SELECT data FROM tw_queue WHERE state = ? "  # noqa: S608 - a fixed collation
            f"ORDER BY priority DESC, requested_at ASC, task_id{self.collate} ASC LIMIT ?"
        )
        return self._rows(statement, ["queued", limit], QueueRow)

    def in_flight(self, team_id: str | None = None) -> list[QueueRow]:
        where, params = ("team_id = ?", [team_id]) if team_id is not None else ("1 = 1", [])
        statement = (
            f"SELECT data FROM tw_queue WHERE {where} "  # noqa: S608 - only placeholders
            f"ORDER BY requested_at ASC, task_id{self.collate} ASC"
        )
        return self._rows(statement, params, QueueRow)

    def queue_row(self, task_id: str) -> QueueRow | None:
        found = self._rows("SELECT data FROM tw_queue WHERE task_id = ?", [task_id], QueueRow)
        return found[0] if found else None

    # ---- HITL items --------------------------------------------------------------------------

    def hitl_items(self, team_id: str, q: HitlQuery) -> tuple[list[HitlRow], int]:
        parts, params = ["team_id = ?"], [team_id]
        for column, values in (("kind", q.kinds), ("status", q.statuses)):
            if values:  # empty: any
                part, more = self._in(column, list(values))
                parts.append(part)
                params += more
        if q.task_id is not None:
            parts.append("task_id = ?")
            params.append(q.task_id)
        where = " AND ".join(parts)
        with self._reading() as cur:
            count = f"SELECT COUNT(*) FROM tw_hitl WHERE {where}"  # noqa: S608
            total = int(self._run(cur, count, params).fetchone()[0])
            select = (
                f"SELECT data FROM tw_hitl WHERE {where} "  # noqa: S608
                "ORDER BY position DESC LIMIT ? OFFSET ?"
            )
            rows = self._run(cur, select, [*params, q.limit, q.offset]).fetchall()
        return [msgspec.json.decode(r[0], type=HitlRow) for r in rows], total

    def hitl_kinds(
        self, team_id: str, task_id: str, kinds: tuple[str, ...], limit: int
    ) -> dict[str, str]:
        kind_in, params = self._in("kind", list(kinds))
        statement = (
            "SELECT id, kind FROM tw_hitl WHERE task_id = ? AND team_id = ? "  # noqa: S608
            f"AND {kind_in} ORDER BY position LIMIT ?"
        )
        with self._reading() as cur:
            rows = self._run(cur, statement, [task_id, team_id, *params, limit]).fetchall()
        return {r[0]: r[1] for r in rows}

    def hitl_due(self, now: float, limit: int = 100) -> list[HitlRow]:
        kinds, params = self._in("kind", list(DUE_KINDS))
        statement = (
            "SELECT data FROM tw_hitl WHERE status = ? AND deadline IS NOT NULL "  # noqa: S608
            f"AND deadline <= ? AND {kinds} ORDER BY deadline ASC, position ASC LIMIT ?"
        )
        return self._rows(statement, ["pending", now, *params, limit], HitlRow)

    # ---- output ------------------------------------------------------------------------------

    def output(
        self, team_id: str, task_id: str, after: int = 0, limit: int = 1000
    ) -> list[OutputRow]:
        statement = (
            "SELECT data FROM tw_output WHERE task_id = ? AND team_id = ? AND position > ? "
            "ORDER BY position ASC LIMIT ?"
        )
        return self._rows(statement, [task_id, team_id, after, limit], OutputRow)

    def _rows(self, statement: str, params: list[Any], shape: type[Any]) -> list[Any]:
        with self._reading() as cur:
            rows = self._run(cur, statement, params).fetchall()
        return [msgspec.json.decode(r[0], type=shape) for r in rows]
