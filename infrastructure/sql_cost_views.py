"""The cost rollups in SQL (projections/costs.py), shared by SQLite and Postgres.

One row per (team, UTC day, project, task, execution, agent, provider, model), its totals added
to by each usage event (``ON CONFLICT ... DO UPDATE SET x = x + excluded.x``), in the transaction
that moves the tracking position. Every answer sums these rows over the primary key's leading
``(team_id, day)`` or the ``(team_id, project_id, day)`` index, so a query reads a team's days,
never its usage.
"""

from __future__ import annotations

from typing import Any

import msgspec

from infrastructure.sql_backend import SqlBackend
from projections.batch import Changes
from projections.cost_rows import GROUP_COLUMNS, CostGroup, CostQuery, CostRow, Grouping
from projections.costs import TOTALS, CostKey, CostTotals
from projections.rows import Page, TaskRow, page_of

KEY = tuple(CostKey.__struct_fields__)


def cost_schema(big: str) -> tuple[str, ...]:
    totals = ", ".join(f"{name} {big} NOT NULL" for name in TOTALS)
    keys = ", ".join(f"{name} TEXT NOT NULL" for name in KEY)
    return (
        f"CREATE TABLE IF NOT EXISTS tw_costs ({keys}, {totals}, PRIMARY KEY ({', '.join(KEY)}))",
        "CREATE INDEX IF NOT EXISTS tw_costs_project ON tw_costs (team_id, project_id, day)",
    )


COST_CONFLICT = f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET " + ", ".join(
    f"{n} = tw_costs.{n} + excluded.{n}" for n in TOTALS
)
COST_UPSERT = (
    f"INSERT INTO tw_costs ({', '.join(KEY + TOTALS)}) "  # noqa: S608 - our own column names
    f"VALUES ({', '.join('?' for _ in KEY + TOTALS)}) {COST_CONFLICT}"
)
SUMS = ", ".join(f"COALESCE(SUM({name}), 0)" for name in TOTALS)


class SqlCostViews(SqlBackend):
    """Mixed into SqlReadModel, which supplies the cursors and the backend's placeholders."""

    def _write_costs(self, cur: Any, changes: Changes) -> None:
        values = [(*key, *totals) for key, totals in sorted(changes.costs.items())]
        self._insert_rows(cur, "tw_costs", KEY + TOTALS, values, COST_CONFLICT)

    # ---- queries -----------------------------------------------------------------------------

    def _cost_filter(self, team_id: str, q: CostQuery) -> tuple[str, list[Any]]:
        parts, params = ["team_id = ?"], [team_id]
        for clause, value in (
            ("project_id = ?", q.project_id),
            ("day >= ?", q.day_from),
            ("day <= ?", q.day_to),
        ):
            if value is not None:
                parts.append(clause)
                params.append(value)
        return " AND ".join(parts), params

    def cost_totals(self, team_id: str, q: CostQuery) -> CostTotals:
        """Everything the query covers, summed."""
        where, params = self._cost_filter(team_id, q)
        with self._reading() as cur:
            found = self._run(cur, f"SELECT {SUMS} FROM tw_costs WHERE {where}", params)  # noqa: S608
            return _totals(found.fetchone())

    def cost_groups(self, team_id: str, q: CostQuery, by: Grouping) -> list[CostGroup]:
        """Summed per group: by day in date order, otherwise the costliest first."""
        columns = GROUP_COLUMNS[by]
        names = ", ".join(columns)
        order = "day ASC" if by == "day" else f"SUM(cost_units) DESC, {self._text(columns)}"
        where, params = self._cost_filter(team_id, q)
        statement = (
            f"SELECT {names}, {SUMS} FROM tw_costs WHERE {where} "  # noqa: S608
            f"GROUP BY {names} ORDER BY {order}"
        )
        with self._reading() as cur:
            rows = self._run(cur, statement, params).fetchall()
        width = len(columns)
        return [
            CostGroup(key=dict(zip(columns, r[:width], strict=True)), totals=_totals(r[width:]))
            for r in rows
        ]

    def cost_rows(self, team_id: str, q: CostQuery) -> Page:
        """The rows themselves, newest day first, a page at a time."""
        where, params = self._cost_filter(team_id, q)
        order = f"day DESC, {self._text(KEY[2:])}"
        columns = ", ".join(KEY + TOTALS)
        with self._reading() as cur:
            count = f"SELECT COUNT(*) FROM tw_costs WHERE {where}"  # noqa: S608
            total = int(self._run(cur, count, params).fetchone()[0])
            select = (
                f"SELECT {columns} FROM tw_costs WHERE {where} "  # noqa: S608
                f"ORDER BY {order} LIMIT ? OFFSET ?"
            )
            offset = (q.page - 1) * q.page_size
            rows = self._run(cur, select, [*params, q.page_size, offset]).fetchall()
        width = len(KEY)
        items = [CostRow(key=_key(r[:width]), totals=_totals(r[width:])) for r in rows]
        return page_of(items, total, q.page, q.page_size)

    def task_slugs(self, team_id: str, task_ids: list[str]) -> dict[str, str | None]:
        if not task_ids:
            return {}
        where, params = self._in("id", sorted(set(task_ids)))
        statement = f"SELECT data FROM tw_tasks WHERE team_id = ? AND {where}"  # noqa: S608
        with self._reading() as cur:
            found = self._run(cur, statement, [team_id, *params]).fetchall()
        tasks = [msgspec.json.decode(r[0], type=TaskRow) for r in found]
        return {t.id: t.slug for t in tasks}

    def _text(self, columns: tuple[str, ...]) -> str:
        return ", ".join(f"{c}{self.collate} ASC" for c in columns)


def _key(values: Any) -> CostKey:
    return CostKey(**dict(zip(KEY, values, strict=True)))


def _totals(values: Any) -> CostTotals:
    return CostTotals(**{name: int(v) for name, v in zip(TOTALS, values, strict=True)})
