"""What the SQL read model's feature mixins (costs, KPIs, task facts, members) use of the backend:
cursors, placeholders and batch writes, declared once. ``SqlReadModel`` and its SQLite and
Postgres subclasses supply them."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any


class SqlBackend:
    collate: str  # appended to text sort columns so both backends order text by code point

    @abstractmethod
    def _reading(self) -> AbstractContextManager[Any]: ...

    @abstractmethod
    def _sql(self, statement: str) -> str: ...

    @abstractmethod
    def _in(self, column: str, values: list[Any]) -> tuple[str, list[Any]]: ...

    @abstractmethod
    def _run(self, cur: Any, statement: str, params: list[Any] | tuple[Any, ...] = ()) -> Any: ...

    @abstractmethod
    def _insert_rows(
        self,
        cur: Any,
        table: str,
        columns: tuple[str, ...],
        rows: list[tuple[Any, ...]],
        conflict: str = "",
    ) -> None: ...

    def _ask(self, cur: Any, statement: str, params: list[Any]) -> Callable[[], list[Any]]:
        """A read's rows, as a call: the statement is sent now, its rows read when called. A
        backend may send several reads before it waits for the first (Postgres in pipeline
        mode: ``apply`` sends all of its reads, then reads their rows, one round trip)."""
        rows = self._run(cur, statement, params).fetchall()
        return lambda: rows

    def _run_many(self, cur: Any, statement: str, rows: list[Any]) -> None:
        """``statement`` (placeholders ``?``) once per row. One row is one ``execute``: psycopg's
        ``executemany`` enters and leaves a pipeline even for one row, two round trips where one
        does, and a live runner's batch is mostly one row per table."""
        if len(rows) == 1:
            self._run(cur, statement, rows[0])
        elif rows:
            cur.executemany(self._sql(statement), rows)
