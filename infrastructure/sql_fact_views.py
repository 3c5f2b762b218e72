"""The task facts (projections/task_facts.py) in SQL, shared by SQLite and Postgres: one row per
task in ``tw_task_facts``, written in the transaction that moves the tracking position, and a
project's analytics summed over its rows created or finished in a window of UTC days (the
``(team_id, project_id, created_day)`` and ``(team_id, project_id, finished_day)`` indexes), so
an answer reads one project's rows of the period, never the log.

A batch loads the rows of the tasks its fact events name (one query), folds them in memory and
writes each changed row once (``_insert_rows``: one statement on Postgres, ``COPY`` for a large
batch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from infrastructure.sql_backend import SqlBackend
from projections.analytics import (
    AgentFigures,
    DayCounts,
    FactWindow,
    Outcomes,
    PersonFigures,
    ProjectFigures,
    Spread,
    Waits,
)
from projections.task_facts import TaskFact, evolve_facts, task_of

TEXT = (
    "task_id",
    "team_id",
    "project_id",
    "created_at",
    "created_day",
    "created_by",
    "assigned_to",
    "metadata_agent",
    "agent",
    "first_started_at",
    "started_at",
    "finished_at",
    "finished_day",
    "outcome",
    "last_failure_reason",
)
REAL = ("estimated_duration", "pickup_seconds", "duration_seconds", "wait_seconds")
INTEGER = ("executions", "failures", "waits")
# beside the fact's fields: the open waits (JSON, key to since) and how many there are
COLUMNS = (*TEXT, *REAL, *INTEGER, "open_waits", "waiting")
NOT_NULL = frozenset(
    {"task_id", "team_id", "project_id", "created_at", "created_day", "created_by", "agent",
     "wait_seconds", "executions", "failures", "waits", "open_waits", "waiting"}
)  # fmt: skip
FACT_CONFLICT = "ON CONFLICT (task_id) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in COLUMNS[1:]
)
FINISHED = "finished_day BETWEEN ? AND ?"
CREATED = "created_day BETWEEN ? AND ?"
COMPLETED = f"({FINISHED} AND outcome = 'completed')"
RATED = f"{COMPLETED} AND duration_seconds IS NOT NULL AND estimated_duration IS NOT NULL"
ON_TIME = f"{RATED} AND duration_seconds <= estimated_duration"
PERSON = "COALESCE(assigned_to, created_by)"
RETRIES = "CASE WHEN executions > 1 THEN executions - 1 ELSE 0 END"


def fact_schema(real: str, big: str) -> tuple[str, ...]:
    def kind(column: str) -> str:
        base = "TEXT" if column in TEXT or column == "open_waits" else real
        base = big if column in INTEGER or column == "waiting" else base
        return base + (" NOT NULL" if column in NOT_NULL else "")

    columns = ", ".join(
        f"{c} {kind(c)}" + (" PRIMARY KEY" if c == "task_id" else "") for c in COLUMNS
    )
    return (
        f"CREATE TABLE IF NOT EXISTS tw_task_facts ({columns})",
        "CREATE INDEX IF NOT EXISTS tw_task_facts_created "
        "ON tw_task_facts (team_id, project_id, created_day)",
        "CREATE INDEX IF NOT EXISTS tw_task_facts_finished "
        "ON tw_task_facts (team_id, project_id, finished_day)",
    )


def fact_values(fact: TaskFact) -> tuple[Any, ...]:
    fields = msgspec.structs.asdict(fact)
    waits = msgspec.json.encode(fact.open_waits).decode()
    return (*(fields[c] for c in (*TEXT, *REAL, *INTEGER)), waits, len(fact.open_waits))


def fact_of(row: Any) -> TaskFact:
    fields = dict(zip(COLUMNS, row, strict=True))
    fields.pop("waiting")
    fields["open_waits"] = msgspec.json.decode(fields["open_waits"])
    for name in REAL:
        if fields[name] is not None:
            fields[name] = float(fields[name])
    return TaskFact(**fields)


class SqlFactViews(SqlBackend):
    """Mixed into SqlReadModel, which supplies the cursors and the backend's placeholders."""

    def _loading_facts(
        self, cur: Any, events: list[tuple[int, Any]]
    ) -> Callable[[], dict[str, TaskFact]]:
        """The stored facts of the tasks the events are about, read when called."""
        task_ids = {task for _, e in events if (task := task_of(e)) is not None}
        if not task_ids:
            return dict
        where, params = self._in("task_id", sorted(task_ids))
        select = f"SELECT {', '.join(COLUMNS)} FROM tw_task_facts WHERE {where}"  # noqa: S608
        rows = self._ask(cur, select, params)
        return lambda: {f.task_id: f for f in map(fact_of, rows())}

    def _write_facts(
        self, cur: Any, events: list[tuple[int, Any]], known: dict[str, TaskFact]
    ) -> None:
        """The task facts the events change (``known``: their stored facts), in the caller's
        transaction."""
        facts = [(p, e) for p, e in events if task_of(e) is not None]
        if not facts:
            return
        changed = evolve_facts(facts, known)
        gone = sorted(key for key, fact in changed.items() if fact is None)
        if gone:
            where, params = self._in("task_id", gone)
            self._run(cur, f"DELETE FROM tw_task_facts WHERE {where}", params)  # noqa: S608
        rows = [fact_values(f) for _, f in sorted(changed.items()) if f is not None]
        self._insert_rows(cur, "tw_task_facts", COLUMNS, rows, FACT_CONFLICT)

    # ---- a project's analytics -----------------------------------------------------------

    def project_figures(self, w: FactWindow) -> ProjectFigures:
        """The project's figures over the window (projections/analytics.py)."""
        with self._reading() as cur:
            return ProjectFigures(
                outcomes=self._outcomes(cur, w),
                days=self._days(cur, w),
                duration=self._spread(cur, w, "duration_seconds", COMPLETED, 1),
                pickup=self._spread(cur, w, "pickup_seconds", CREATED, 1),
                waits=self._waits(cur, w),
                people=self._people(cur, w),
                agents=self._agents(cur, w),
            )

    def _select(
        self, cur: Any, w: FactWindow, what: str, where: str, bounds: int, tail: str = ""
    ) -> Any:
        """``what`` over the project's rows matching ``where``, whose ``?`` are ``bounds``
        times the window's two days, then ``tail`` (GROUP BY, ORDER BY, LIMIT: our own text, no
        parameter)."""
        statement = (
            f"SELECT {what} FROM tw_task_facts "  # noqa: S608 - our own fragments
            f"WHERE team_id = ? AND project_id = ? AND ({where}) {tail}"
        )
        days = [w.day_from, w.day_to] * bounds
        return self._run(cur, statement, [w.team_id, w.project_id, *days])

    def _outcomes(self, cur: Any, w: FactWindow) -> Outcomes:
        counts = (
            f"SUM(CASE WHEN {CREATED} THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {COMPLETED} THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {FINISHED} AND outcome IN ('failed', 'timed_out') THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {FINISHED} AND outcome = 'cancelled' THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {ON_TIME} THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {RATED} THEN 1 ELSE 0 END)"
        )
        statement = (
            f"SELECT {counts} FROM tw_task_facts "  # noqa: S608 - our own fragments
            f"WHERE team_id = ? AND project_id = ? AND ({CREATED} OR {FINISHED})"
        )
        bounds = [w.day_from, w.day_to]
        params = [*bounds * 6, w.team_id, w.project_id, *bounds * 2]
        n = [int(v or 0) for v in self._run(cur, statement, params).fetchone()]
        return Outcomes(
            created=n[0], completed=n[1], failed=n[2], cancelled=n[3], on_time=n[4], rated=n[5]
        )

    def _days(self, cur: Any, w: FactWindow) -> list[DayCounts]:
        days: dict[str, dict[str, int]] = {}
        made = self._select(cur, w, "created_day, COUNT(*)", CREATED, 1, "GROUP BY created_day")
        for day, n in made.fetchall():
            days.setdefault(day, {})["created"] = int(n)
        ended = self._select(
            cur, w, "finished_day, outcome, COUNT(*)", FINISHED, 1, "GROUP BY finished_day, outcome"
        )
        kind = {"completed": "completed", "failed": "failed", "timed_out": "failed"}
        for day, outcome, n in ended.fetchall():
            if outcome in kind:
                entry = days.setdefault(day, {})
                entry[kind[outcome]] = entry.get(kind[outcome], 0) + int(n)
        return [DayCounts(day=day, **days[day]) for day in sorted(days)]

    def _spread(self, cur: Any, w: FactWindow, column: str, where: str, bounds: int) -> Spread:
        """The median is the middle one or two values in order (LIMIT and OFFSET: the same SQL
        on both databases)."""
        measured = f"{where} AND {column} IS NOT NULL"
        found = self._select(cur, w, f"COUNT(*), SUM({column})", measured, bounds).fetchone()
        count, total = int(found[0] or 0), float(found[1] or 0.0)
        if not count:
            return Spread()
        middle = f"ORDER BY {column} LIMIT {2 - count % 2} OFFSET {(count - 1) // 2}"
        rows = self._select(cur, w, column, measured, bounds, middle).fetchall()
        values = [float(r[0]) for r in rows]
        return Spread(
            count=count,
            total=round(total, 6),
            average=round(total / count, 6),
            median=round(sum(values) / len(values), 6),
        )

    def _waits(self, cur: Any, w: FactWindow) -> Waits:
        what = (
            "COALESCE(SUM(waits), 0), COALESCE(SUM(wait_seconds), 0), "
            "SUM(CASE WHEN waits > 0 THEN 1 ELSE 0 END), COALESCE(SUM(waiting), 0)"
        )
        found = self._select(cur, w, what, CREATED, 1).fetchone()
        return Waits(
            waits=int(found[0]),
            seconds=round(float(found[1]), 6),
            tasks=int(found[2] or 0),
            open=int(found[3]),
        )

    def _people(self, cur: Any, w: FactWindow) -> list[PersonFigures]:
        what = (
            f"{PERSON}, COUNT(*), SUM(CASE WHEN outcome = 'completed' THEN 1 ELSE 0 END), "
            "AVG(CASE WHEN outcome = 'completed' THEN duration_seconds END), "
            f"SUM(CASE WHEN {ON_TIME} THEN 1 ELSE 0 END), SUM(CASE WHEN {RATED} THEN 1 ELSE 0 END)"
        )
        statement = (
            f"SELECT {what} FROM tw_task_facts "  # noqa: S608 - our own fragments
            f"WHERE team_id = ? AND project_id = ? AND {FINISHED} "
            f"GROUP BY {PERSON} ORDER BY {PERSON}"
        )
        bounds = [w.day_from, w.day_to]
        params = [*bounds * 2, w.team_id, w.project_id, *bounds]
        return [
            PersonFigures(
                person=str(person),
                finished=int(finished),
                completed=int(completed or 0),
                average_duration=None if average is None else round(float(average), 6),
                on_time=int(on_time or 0),
                rated=int(rated or 0),
            )
            for person, finished, completed, average, on_time, rated in self._run(
                cur, statement, params
            ).fetchall()
        ]

    def _agents(self, cur: Any, w: FactWindow) -> list[AgentFigures]:
        touched = f"{CREATED} OR {FINISHED}"
        what = f"agent, COUNT(*), SUM(executions), SUM({RETRIES}), SUM(failures)"
        figures = self._select(cur, w, what, touched, 2, "GROUP BY agent ORDER BY agent")
        rows = figures.fetchall()
        failed = f"({touched}) AND last_failure_reason IS NOT NULL"
        why = self._select(
            cur, w, "agent, last_failure_reason, COUNT(*)", failed, 2,
            "GROUP BY agent, last_failure_reason",
        )  # fmt: skip
        reasons: dict[str, dict[str, int]] = {}
        for agent, reason, n in why.fetchall():
            reasons.setdefault(agent, {})[reason] = int(n)
        return [
            AgentFigures(
                agent=agent,
                tasks=int(tasks),
                executions=int(executions or 0),
                retries=int(retries or 0),
                failures=int(failures or 0),
                reasons=reasons.get(agent, {}),
            )
            for agent, tasks, executions, retries, failures in rows
        ]
