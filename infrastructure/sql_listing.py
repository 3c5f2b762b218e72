"""The task listing in SQL: a keyset or page-number page, a bounded count, and the indexes they
walk.

Costs that grow with the table are kept off a page: every sort has an index that ends in the sort
key and the id (per team, per project, and per status for the two time sorts), so a page is an
ordered index walk that stops after ``page_size + 1`` rows; a cursor (``projections/cursor.py``)
starts the walk after the last row served instead of skipping ``OFFSET`` rows. The count: none
on a last page by number (the page tells); else at most ``COUNT_BOUND + 1`` matches are counted,
past which ``total`` is an estimate (Postgres: the planner's row estimate) or a lower bound
(SQLite, which keeps no estimate), and says so in ``total_exact``; on Postgres a planner's
estimate over ``TRUSTED`` bounds is answered without counting. The bound is small because a
count costs per row whatever the page: 10,001 index entries took 17 to 35 ms on Postgres and a
search's 10,001 matches 51 ms on SQLite (100,000 tasks, a loaded machine), the page itself 1 to 8.

Rows leave as stored: ``raw=True`` hands the stored JSON to the encoder as it is (the row is the
API shape, ``projections/rows.py`` TaskRow), instead of a decode and a re-encode per row.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from datetime import UTC, datetime
from typing import Any

import msgspec

from domain.values import rfc3339
from infrastructure.sql_backend import SqlBackend
from infrastructure.sql_search import Fragment
from projections.cursor import encode_cursor
from projections.rows import Keyset, TaskPage, TaskQuery, TaskRow

COUNT_BOUND = 1_000  # a listing counts its matches exactly up to this many
TRUSTED = 2  # an estimate over this many bounds is answered without counting
TASK_SORTS = ("created_at", "updated_at", "priority", "title", "status")
TEXT_SORTS = frozenset({"title", "status"})
STATUS_SORTS = ("created_at", "updated_at")  # a status filter keeps their index walk ordered


def task_indexes(collate: str) -> tuple[str, ...]:
    """The listing's indexes (``collate``: the backend's code-point collation for text sort
    keys), and the two they replace (their columns lead some of these)."""
    statements = [
        "DROP INDEX IF EXISTS tw_tasks_team_created",
        "DROP INDEX IF EXISTS tw_tasks_team_project",
    ]
    for sort in TASK_SORTS:
        key = sort + (collate if sort in TEXT_SORTS else "")
        statements += [
            f"CREATE INDEX IF NOT EXISTS tw_tasks_team_{sort} ON tw_tasks (team_id, {key}, id)",
            f"CREATE INDEX IF NOT EXISTS tw_tasks_project_{sort} "
            f"ON tw_tasks (team_id, project_id, {key}, id)",
        ]
    for sort in STATUS_SORTS:
        statements += [
            f"CREATE INDEX IF NOT EXISTS tw_tasks_team_status_{sort} "
            f"ON tw_tasks (team_id, status, {sort}, id)",
            f"CREATE INDEX IF NOT EXISTS tw_tasks_project_status_{sort} "
            f"ON tw_tasks (team_id, project_id, status, {sort}, id)",
        ]
    return tuple(statements)


class SqlTaskListing(SqlBackend):
    count_bound = COUNT_BOUND
    keeps_statistics = True  # False: the planner must be told which index walks the page in order

    @abstractmethod
    def _has_any_tag(self, tags: list[str]) -> Fragment: ...

    @abstractmethod
    def _add_search(
        self, parts: list[str], params: list[Any], text: str | None, table: str
    ) -> None: ...

    def _few_matches(self, cur: Any, q: TaskQuery) -> bool:
        """Whether the search matches so few tasks that a page is best read from them and
        sorted (then ``_task_filters`` is given ``+``, SQLite's way to keep a column's indexes
        out of a plan), rather than by walking the sort's index until a page of them is met,
        which a rare word makes a walk of the whole listing. A common word is the other way
        round: its matches are many rows read at random, the walk meets a page soon. False:
        the planner chooses (Postgres, whose statistics know the words)."""
        return False

    def _estimate_count(self, cur: Any, where: str, params: list[Any]) -> int | None:
        """How many tasks match, estimated without counting them; None if the backend cannot
        tell (then ``total`` is the bound + 1: at least that many)."""
        return None

    def list_tasks(self, team_id: str, q: TaskQuery, raw: bool = False) -> TaskPage:
        """Live tasks of the team that match ``q``; ``raw``: items are the stored JSON
        (``msgspec.Raw``), else decoded rows."""
        size = q.page_size
        page = None if q.after else q.page
        with self._reading() as cur:
            plus = "+" if self._few_matches(cur, q) else ""
            where, params = self._task_filters(team_id, q, plus)
            page_where = self._page_where(team_id, q, plus, where)
            counted = page == 1 and self._counts_with_page(q, plus)
            if counted:
                statement, more = self._counted_page(page_where, q)
            elif page is not None and page > 1:
                statement, more = self._skipping_page(page_where, q)
            else:
                statement, more = self._page_statement(page_where, q)
            rows = self._run(cur, statement, [*params, *more]).fetchall()
            has_next = len(rows) > size
            rows = rows[:size]
            skipped = ((page or 1) - 1) * size
            if counted:
                total = rows[0][3] if rows else 0  # at most the bound + 1: then a lower bound
                exact = total <= self.count_bound
            elif page is not None and not has_next and (rows or page == 1):
                total, exact = skipped + len(rows), True  # the last page: nothing to count
            else:
                total, exact = self._bounded_count(cur, where, params)
        items = [
            msgspec.Raw(r[0]) if raw else msgspec.json.decode(r[0], type=TaskRow) for r in rows
        ]
        next_cursor = None
        if has_next:
            next_cursor = encode_cursor(q.sort, q.order, Keyset(key=rows[-1][1], id=rows[-1][2]))
        if exact and rows:  # a row written between the two statements (Postgres reads committed)
            total = max(total, skipped + len(rows))
        return TaskPage(
            items=items,
            total=total,
            total_exact=exact,
            page=page,
            page_size=size,
            pages=math.ceil(total / size),
            has_next=has_next,
            has_previous=page is None or page > 1,
            next_cursor=next_cursor,
        )

    def _page_statement(
        self, where: str, q: TaskQuery, columns: str = "", limit: int = 0
    ) -> tuple[str, list[Any]]:
        """The page's SELECT (``columns``, by default data, sort key, id; at most ``limit`` rows,
        by default a page and one more) and its parameters after the filters'."""
        key = q.sort + (self.collate if q.sort in TEXT_SORTS else "")
        direction = "DESC" if q.order == "desc" else "ASC"
        params: list[Any] = []
        if q.after is not None:
            where += f" AND ({key}, id) {'<' if q.order == 'desc' else '>'} (?, ?)"
            params += [q.after.key, q.after.id]
        statement = (
            f"SELECT {columns or f'data, {q.sort}, id'} FROM tw_tasks WHERE {where} "  # noqa: S608
            f"ORDER BY {key} {direction}, id {direction} LIMIT ?"
        )
        params.append(limit or q.page_size + 1)
        if q.after is None and q.page > 1:
            statement += " OFFSET ?"
            params.append((q.page - 1) * q.page_size)
        return statement, params

    def _counts_with_page(self, q: TaskQuery, plus: str) -> bool:
        """Whether a first page is read with its count in one statement (``_counted_page``):
        where the page and the count would each build the same costly set, as SQLite does for
        the full-text matches of a common word (a set of every match, each time). False: the
        page, then ``_bounded_count``."""
        return False

    def _counted_page(self, where: str, q: TaskQuery) -> tuple[str, list[Any]]:
        """The first page (data, sort key, id) and, on every row, the number of matches up to
        the bound + 1, from one walk of the sort's index: the first bound + 1 matches in order
        (ids and keys only), counted, the page's rows then read by id."""
        walk, params = self._page_statement(where, q, f"{q.sort} AS k, id", self.count_bound + 1)
        first = f"SELECT k, id FROM m {self._keys_order(q)} LIMIT ?"  # noqa: S608 - our names
        rows = self._by_id(first, q, ", (SELECT COUNT(*) FROM m)")
        return f"WITH m AS MATERIALIZED ({walk}) {rows}", [*params, q.page_size + 1]

    def _skipping_page(self, where: str, q: TaskQuery) -> tuple[str, list[Any]]:
        """A page by number past the first: the rows it skips are walked for their keys and ids
        alone, the page's rows then read by id (not every skipped row's data)."""
        walk, params = self._page_statement(where, q, f"{q.sort} AS k, id")
        return self._by_id(walk, q), params

    def _by_id(self, keys: str, q: TaskQuery, more: str = "") -> str:
        """The page's rows (data, sort key, id, then ``more``) of ``keys``, a SELECT of sort
        keys ``k`` and ids, in the sort's order."""
        return (
            f"SELECT t.data, p.k, p.id{more} FROM ({keys}) AS p "  # noqa: S608 - our names
            f"JOIN tw_tasks AS t ON t.id = p.id {self._keys_order(q, 'p.')}"
        )

    def _keys_order(self, q: TaskQuery, table: str = "") -> str:
        key = f"{table}k" + (self.collate if q.sort in TEXT_SORTS else "")
        direction = "DESC" if q.order == "desc" else "ASC"
        return f"ORDER BY {key} {direction}, {table}id {direction}"

    def _bounded_count(self, cur: Any, where: str, params: list[Any]) -> tuple[int, bool]:
        """The number of matches and True, or past the bound an estimate and False."""
        bound = self.count_bound
        estimate = self._estimate_count(cur, where, params)
        if estimate is not None and estimate > TRUSTED * bound:
            return estimate, False  # far past the bound: counting up to it would be wasted
        statement = (
            f"SELECT COUNT(*) FROM (SELECT 1 FROM tw_tasks WHERE {where} "  # noqa: S608
            "LIMIT ?) AS bounded"
        )
        found = int(self._run(cur, statement, [*params, bound + 1]).fetchone()[0])
        if found <= bound:
            return found, True
        return max(estimate or 0, bound + 1), False

    def _page_where(self, team_id: str, q: TaskQuery, plus: str, where: str) -> str:
        """The page's filters: ``where`` (the count's), or the same with the range filters kept
        off the indexes when the page is best read by status (``_walk_by_status``)."""
        if plus or not self._walk_by_status(q):
            return where
        return self._task_filters(team_id, q, "", ranges="+")[0]

    def _walk_by_status(self, q: TaskQuery) -> bool:
        """Whether a page is best read by walking the status index of its sort in order, the
        range filters (priority, creation time) checked on each row, stopping at a page: one
        status and a sort that has a status index. A planner without statistics (SQLite's read
        model, never analysed) walks the priority index instead and sorts every task in the
        range: at 2,500 tasks, 1.2 ms against 0.05 for ``status=pending&priority=high``. The
        count is left to the planner (the priority range counts fewer rows)."""
        return not self.keeps_statistics and len(q.status) == 1 and q.sort in STATUS_SORTS

    def _task_filters(
        self, team_id: str, q: TaskQuery, plus: str = "", ranges: str = ""
    ) -> Fragment:
        """``plus``: see ``_few_matches``; ``ranges``: the same for the range filters only
        (``_walk_by_status``)."""
        ranges = ranges or plus
        # the tasks of a deleted project leave the listings with it (their rows stay for history)
        parts = [f"{plus}team_id = ?"]
        params: list[Any] = [team_id]
        if q.project_id is not None:
            parts += [
                f"{plus}project_id = ?",
                "EXISTS (SELECT 1 FROM tw_projects WHERE id = ? AND team_id = ?)",
            ]
            params += [q.project_id, q.project_id, team_id]
        else:  # the team's projects: one set for the query, not one look-up per row
            parts.append(f"{plus}project_id IN (SELECT id FROM tw_projects WHERE team_id = ?)")  # noqa: S608
            params.append(team_id)
        if len(q.status) == 1:  # an equality keeps the status indexes' walk in sort order
            parts.append(f"{plus}status = ?")
            params.append(q.status[0])
        elif q.status:
            part, more = self._in(f"{plus}status", list(q.status))
            parts.append(part)
            params += more
        if q.assigned_to is not None:
            parts.append(f"{plus}assigned_to = ?")
            params.append(q.assigned_to)
        if q.tags:
            part, more = self._has_any_tag(list(q.tags))
            parts.append(part)
            params += more
        if q.priority is not None:
            parts.append(f"{ranges}priority >= ?")
            params.append(q.priority)
        for bound, op in ((q.created_after, ">="), (q.created_before, "<=")):
            if bound is not None:
                parts.append(f"{ranges}created_at {op} ?")
                params.append(moment(bound))
        self._add_search(parts, params, q.search, "tasks")
        return " AND ".join(parts), params


def moment(value: datetime) -> str:
    """A filter bound as stored text; a naive time is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return rfc3339(value) or ""
