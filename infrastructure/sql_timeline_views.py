"""A task's timeline index in SQL shared by SQLite and Postgres: one row per event of a task and
of its questions, checkpoints and experiences in ``tw_timeline`` (its position and kind, from
``projections/timeline.py``), so that a page of a timeline of any length is one range read of
``(task_id, position)`` and a read of the page's events by position (``application/timeline.py``)
instead of a scan of every event of the task and its items.

Rows are written in the transaction that moves the tracking position. A read model that had
applied events before this table existed records where the index starts (``timeline_from``,
set by ``migrate``); the timeline reads what lies before it from the event store, the slow way,
until a rebuild (``taskwarden projections --rebuild``) indexes it all.
"""

from __future__ import annotations

from typing import Any

from infrastructure.sql_backend import SqlBackend
from infrastructure.sql_quarantine import TRACKING  # the read model's own tracking row
from projections.timeline import ITEM_NAMES, entry_of

TIMELINE_FROM = "timeline_from"  # a tw_tracking row: the first position the index holds


def timeline_schema(big: str) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE IF NOT EXISTS tw_timeline (
            task_id TEXT NOT NULL, position {big} NOT NULL, team_id TEXT NOT NULL,
            kind TEXT NOT NULL, PRIMARY KEY (task_id, position))""",
    )


TIMELINE_COLUMNS = ("task_id", "position", "team_id", "kind")


class SqlTimelineViews(SqlBackend):
    """Mixed into SqlReadModel, which supplies the cursors and the backend's placeholders."""

    def _write_timeline(self, cur: Any, events: list[tuple[int, Any]]) -> None:
        """The index rows of the events, in the caller's transaction (after ``tw_hitl``'s rows:
        an old withdrawal's kind is its item's)."""
        rows = []
        for position, event in events:
            entry = entry_of(event)
            if entry is None:
                continue
            task_id, team_id, kind = entry
            rows.append((task_id, position, team_id, kind or self._item_kind(cur, event)))
        # one set (Postgres: one statement, or COPY for a large batch): a position is applied
        # once, so no row is there already
        self._insert_rows(cur, "tw_timeline", TIMELINE_COLUMNS, rows)

    def _item_kind(self, cur: Any, event: Any) -> str:
        found = self._run(
            cur, "SELECT kind FROM tw_hitl WHERE id = ?", [str(event.originator_id)]
        ).fetchone()
        return ITEM_NAMES.get(found[0], "task") if found else "task"

    def timeline(  # noqa: PLR0913
        self,
        team_id: str,
        task_id: str,
        span: tuple[int, int],
        kinds: frozenset[str] | None,
        limit: int,
    ) -> list[tuple[int, str]]:
        """``(position, kind)`` of the task's indexed events in ``(after, upto]``, of ``kinds``
        (None: every kind), in log order, at most ``limit``."""
        after, upto = span
        statement = (
            "SELECT position, kind FROM tw_timeline WHERE task_id = ? AND team_id = ? "
            "AND position > ? AND position <= ?"
        )
        params: list[Any] = [task_id, team_id, after, upto]
        if kinds is not None:
            where, more = self._in("kind", sorted(kinds))
            statement += f" AND {where}"
            params += more
        statement += " ORDER BY position LIMIT ?"
        with self._reading() as cur:
            rows = self._run(cur, statement, [*params, limit]).fetchall()
        return [(int(r[0]), r[1]) for r in rows]

    def timeline_span(self) -> tuple[int, int]:
        """Where the index starts and the applied position, read together."""
        with self._reading() as cur:
            rows = self._run(
                cur,
                "SELECT name, position FROM tw_tracking WHERE name IN (?, ?)",
                [TIMELINE_FROM, TRACKING],
            ).fetchall()
        found = {r[0]: int(r[1]) for r in rows}
        applied = found.get(TRACKING, 0)
        return min(found.get(TIMELINE_FROM, 0), applied), applied

    def _mark_timeline_start(self, cur: Any, table_existed: bool, position: int) -> None:
        """Called by ``migrate`` after the schema, with the tracking position: a read model that
        applied events before the index existed says the index starts after them."""
        if not table_existed and position > 0:
            self._run(
                cur,
                "INSERT INTO tw_tracking (name, position) VALUES (?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                [TIMELINE_FROM, position],
            )
