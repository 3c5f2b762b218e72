"""Which tasks a project had, deleted ones included, in SQL shared by SQLite and Postgres: one row
per task in ``tw_task_members``, written when it is created and marked (never removed) when it is
deleted, so that a board as of a moment (``application/board.py``) finds the tasks alive then
without reading the log. ``tw_tasks`` forgets a deleted task; this table does not.

A row is written in the transaction that moves the tracking position; a rebuild writes them all
again (``taskwarden projections --rebuild``, needed once for tasks created before this table).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.place import place_of
from domain.task import Task
from domain.values import rfc3339
from infrastructure.sql_backend import SqlBackend


def member_schema(big: str) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE IF NOT EXISTS tw_task_members (
            task_id TEXT PRIMARY KEY, team_id TEXT NOT NULL, project_id TEXT NOT NULL,
            created_position {big} NOT NULL, created_at TEXT NOT NULL,
            deleted_position {big}, deleted_at TEXT)""",
        "CREATE INDEX IF NOT EXISTS tw_task_members_project "
        "ON tw_task_members (team_id, project_id, created_position)",
    )


MEMBER_COLUMNS = ("task_id", "team_id", "project_id", "created_position", "created_at")
MEMBER_DELETED = (
    "UPDATE tw_task_members SET deleted_position = ?, deleted_at = ? "
    "WHERE task_id = ? AND deleted_position IS NULL"
)


class SqlMemberViews(SqlBackend):
    """Mixed into SqlReadModel, which supplies the cursors and the backend's placeholders."""

    def _write_members(self, cur: Any, events: list[tuple[int, Any]]) -> None:
        """The tasks the events create or delete, in the caller's transaction."""
        made = [
            (str(e.originator_id), place["team_id"], place["project_id"], p, rfc3339(e.timestamp))
            for p, e in events
            if isinstance(e, Task.Created) and (place := place_of(e))
        ]
        gone = [
            (p, rfc3339(e.timestamp), str(e.originator_id))
            for p, e in events
            if isinstance(e, Task.Deleted)
        ]
        # a task is created once: no two rows share a task id (``_insert_rows``)
        self._insert_rows(
            cur, "tw_task_members", MEMBER_COLUMNS, made, "ON CONFLICT (task_id) DO NOTHING"
        )
        self._run_many(cur, MEMBER_DELETED, gone)

    def task_ids_at(
        self, team_id: str, project_id: str, at: int | datetime, limit: int
    ) -> list[str]:
        """The project's tasks created at or before ``at`` (a position or a time) and not
        deleted by then, oldest first, at most ``limit``."""
        if isinstance(at, datetime):
            bound: Any = rfc3339(at)
            made, gone = "created_at", "deleted_at"
        else:
            bound, made, gone = at, "created_position", "deleted_position"
        statement = (
            "SELECT task_id FROM tw_task_members WHERE team_id = ? AND project_id = ? "  # noqa: S608
            f"AND {made} <= ? AND ({gone} IS NULL OR {gone} > ?) "
            "ORDER BY created_position LIMIT ?"
        )
        with self._reading() as cur:
            rows = self._run(cur, statement, [team_id, project_id, bound, bound, limit])
            return [r[0] for r in rows.fetchall()]
