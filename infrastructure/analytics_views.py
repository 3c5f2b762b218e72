"""The read-only SQL views for BI tools (docs/costs.md, "SQL views for BI tools"), Postgres only.

An analyst's tool reads the schema ``analytics``, never the ``tw_*`` tables: the tables are the
projections' own and change shape between versions, the views are a published contract. Their
names, columns and column types stay; a later version only adds columns at the end of a view
(``CREATE OR REPLACE VIEW`` refuses anything else). Every view and column carries its meaning as
a Postgres comment, which BI tools show beside the column.

Only columns that hold no secret are shown: no task description, metadata, result, repository
URL or project settings. The views hold every team's rows; ``grant_analytics`` gives a role
SELECT on them and nothing else, so it is for an operator's analyst, not for a tenant.

``taskwarden migrate`` creates them (idempotently, under the read model's write lock); a rebuild
empties the tables with DELETE and never drops them, so the views stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

SCHEMA = "analytics"
MAX_ROLE_BYTES = 63  # NAMEDATALEN - 1: Postgres cuts a longer name to another role's name
UNITS = "100000000"  # cost units per dollar (projections/costs.py UNITS)
COST = f"(SUM(cost_units)::numeric / {UNITS})::numeric(18,8)"
TOKEN_SUMS = ", ".join(
    f"SUM({name})::bigint AS {name}"
    for name in (
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "requests",
        "calls",
    )
)
TOTALS = {
    "input_tokens": "bigint: uncached input tokens",
    "output_tokens": "bigint: output tokens",
    "cache_read_tokens": "bigint: input tokens read from the provider's prompt cache",
    "cache_write_tokens": "bigint: input tokens written to the provider's prompt cache",
    "reasoning_tokens": "bigint: reasoning tokens, where the agent reported them",
    "requests": "bigint: requests made to the model provider",
    "calls": "bigint: usage reports (seed 001's calls)",
    "cost_usd": "numeric(18,8): the cost in US dollars, priced when the usage was recorded",
}
MODEL = {
    "agent": "text: the agent that ran (the execution's, else the task's, else 'default')",
    "provider": "text: the model provider (anthropic, openai, ...); NULL when not reported",
    "model": "text: the model; NULL when not reported",
}


@dataclass(frozen=True)
class View:
    name: str
    about: str
    select: str
    columns: dict[str, str]  # name to "type: meaning", in the view's order


VIEWS = (
    View(
        "costs",
        "The cost rollup rows: one per team, UTC day, project, task, execution, agent, provider "
        "and model, summed from the usage events.",
        f"""SELECT team_id, day::date AS day, project_id, task_id, execution_id, agent,
            NULLIF(provider, '') AS provider, NULLIF(model, '') AS model,
            input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
            requests, calls, (cost_units::numeric / {UNITS})::numeric(18,8) AS cost_usd
        FROM tw_costs""",  # noqa: S608 - our own constants
        {
            "team_id": "text: the team",
            "day": "date: the UTC day of the usage",
            "project_id": "text: the project's id (analytics.projects)",
            "task_id": "text: the task's id (analytics.task_facts)",
            "execution_id": "text: the execution (one run of the task's agent)",
            **MODEL,
            **TOTALS,
        },
    ),
    View(
        "cost_daily",
        "What usage cost per team, UTC day, project, agent, provider and model (GET "
        "/api/costs/daily sums these rows per day).",
        f"""SELECT team_id, day::date AS day, project_id, agent,
            NULLIF(provider, '') AS provider, NULLIF(model, '') AS model, {TOKEN_SUMS},
            {COST} AS cost_usd
        FROM tw_costs GROUP BY team_id, day, project_id, agent, provider, model""",  # noqa: S608 - our own constants
        {
            "team_id": "text: the team",
            "day": "date: the UTC day of the usage",
            "project_id": "text: the project's id (analytics.projects)",
            **MODEL,
            **TOTALS,
        },
    ),
    View(
        "cost_by_task",
        "What each task's usage cost over its whole life (GET /api/costs/by-job).",
        f"""SELECT c.team_id, c.project_id, c.task_id, t.data::jsonb ->> 'slug' AS slug,
            c.first_day, c.last_day, c.executions, c.input_tokens, c.output_tokens,
            c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens, c.requests, c.calls,
            c.cost_usd
        FROM (SELECT team_id, project_id, task_id, MIN(day)::date AS first_day,
                MAX(day)::date AS last_day, COUNT(DISTINCT execution_id)::bigint AS executions,
                {TOKEN_SUMS}, {COST} AS cost_usd
            FROM tw_costs GROUP BY team_id, project_id, task_id) AS c
        LEFT JOIN tw_tasks AS t ON t.id = c.task_id AND t.team_id = c.team_id""",  # noqa: S608 - our own constants
        {
            "team_id": "text: the team",
            "project_id": "text: the project's id (analytics.projects)",
            "task_id": "text: the task's id (analytics.task_facts)",
            "slug": "text: the task's slug (seed 001's job); NULL without one or once deleted",
            "first_day": "date: the first UTC day with usage",
            "last_day": "date: the last UTC day with usage",
            "executions": "bigint: executions that reported usage",
            **TOTALS,
        },
    ),
    View(
        "task_facts",
        "One row per task of a live project, as the task listings show it, with what its "
        "usage cost so far. A deleted task or project leaves this view.",
        f"""SELECT t.team_id, t.project_id, t.id AS task_id, d ->> 'slug' AS slug, t.title,
            t.status, d ->> 'priority' AS priority, t.priority AS priority_level, t.assigned_to,
            d ->> 'created_by' AS created_by, t.created_at::timestamptz AS created_at,
            t.updated_at::timestamptz AS updated_at,
            (d ->> 'started_at')::timestamptz AS started_at,
            (d ->> 'completed_at')::timestamptz AS completed_at,
            (d ->> 'estimated_duration')::double precision AS estimated_duration_seconds,
            t.actual_duration AS actual_duration_seconds, (d ->> 'attempt')::integer AS attempts,
            (d ->> 'progress_percentage')::integer AS progress_percentage, t.tags,
            COALESCE(c.calls, 0)::bigint AS calls,
            (COALESCE(c.cost_units, 0)::numeric / {UNITS})::numeric(18,8) AS cost_usd,
            f.agent, f.first_started_at::timestamptz AS first_started_at,
            f.pickup_seconds, COALESCE(f.executions, 0) AS executions,
            COALESCE(f.failures, 0) AS failures, f.last_failure_reason,
            COALESCE(f.waits, 0) AS waits_on_people,
            COALESCE(f.wait_seconds, 0) AS wait_on_people_seconds
        FROM tw_tasks AS t
        CROSS JOIN LATERAL (SELECT t.data::jsonb AS d) AS j
        JOIN tw_projects AS p ON p.id = t.project_id AND p.team_id = t.team_id
        LEFT JOIN (SELECT team_id, task_id, SUM(calls) AS calls, SUM(cost_units) AS cost_units
            FROM tw_costs GROUP BY team_id, task_id) AS c
            ON c.team_id = t.team_id AND c.task_id = t.id
        LEFT JOIN tw_task_facts AS f ON f.task_id = t.id AND f.team_id = t.team_id""",  # noqa: S608 - our own constants
        {
            "team_id": "text: the team",
            "project_id": "text: the project's id (analytics.projects)",
            "task_id": "text: the task's id",
            "slug": "text: the task's slug, unique in its team; NULL without one",
            "title": "text: the task's title",
            "status": "text: pending, queued, running, needs_input, awaiting_approval, "
            "completed, failed, cancelled or timed_out",
            "priority": "text: low, normal, high or urgent",
            "priority_level": "integer: the priority as 1 (low) to 4 (urgent)",
            "assigned_to": "text: the user the task is assigned to; NULL when nobody",
            "created_by": "text: who created the task",
            "created_at": "timestamptz: when the task was created",
            "updated_at": "timestamptz: the task's last change",
            "started_at": "timestamptz: when its latest execution started; NULL before it did",
            "completed_at": "timestamptz: when it reached completed, failed, cancelled or "
            "timed_out; NULL before",
            "estimated_duration_seconds": "double precision: the estimate its creator gave; "
            "NULL without one",
            "actual_duration_seconds": "double precision: from started_at to completed_at, "
            "from event times; NULL until finished",
            "attempts": "integer: executions requested so far (retries and reworks included)",
            "progress_percentage": "integer: 0 to 100, as the agent last reported",
            "tags": "text[]: the task's tags",
            "calls": "bigint: usage reports so far",
            "cost_usd": "numeric(18,8): what its usage cost so far, in US dollars",
            "agent": "text: the agent of its latest execution request (else its agent metadata, "
            "else default); NULL before the task facts counted it",
            "first_started_at": "timestamptz: when its first execution started; NULL before",
            "pickup_seconds": "double precision: from creation to the first execution start",
            "executions": "integer: executions started",
            "failures": "integer: executions that failed or timed out, and requests that "
            "expired in the queue",
            "last_failure_reason": "text: the reason of its last failure (at most 200 "
            "characters); NULL without one",
            "waits_on_people": "integer: questions, checkpoints and reviews that were answered "
            "or decided",
            "wait_on_people_seconds": "double precision: the time those waited on a person, "
            "summed",
        },
    ),
    View(
        "projects",
        "One row per live project (a deleted project leaves this view).",
        """SELECT team_id, id AS project_id, data::jsonb ->> 'slug' AS slug, name, status,
            created_by, created_at::timestamptz AS created_at,
            updated_at::timestamptz AS updated_at
        FROM tw_projects""",
        {
            "team_id": "text: the team",
            "project_id": "text: the project's id",
            "slug": "text: the project's slug, unique in its team; NULL without one",
            "name": "text: the project's name",
            "status": "text: the project's status",
            "created_by": "text: who created the project",
            "created_at": "timestamptz: when the project was created",
            "updated_at": "timestamptz: the project's last change",
        },
    ),
)


class RoleNameError(ValueError):
    """Not a role name a grant may name."""


class UnknownRoleError(LookupError):
    """No such role on the server."""


class AnalyticsMissingError(LookupError):
    """The schema is not there: ``taskwarden migrate`` has not run."""


def create_views(cur: Any) -> None:
    """Creates the schema and the views, or replaces their queries (``cur``: in the migrate's
    transaction, under the read model's write lock)."""
    schema = sql.Identifier(SCHEMA)
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
    cur.execute(
        sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
            schema, sql.Literal("Taskwarden's read-only views for BI tools (docs/costs.md)")
        )
    )
    for view in VIEWS:
        name = sql.Identifier(SCHEMA, view.name)
        cur.execute(sql.SQL("CREATE OR REPLACE VIEW {} AS {}").format(name, sql.SQL(view.select)))
        cur.execute(sql.SQL("COMMENT ON VIEW {} IS {}").format(name, sql.Literal(view.about)))
        for column, meaning in view.columns.items():
            cur.execute(
                sql.SQL("COMMENT ON COLUMN {} IS {}").format(
                    sql.Identifier(SCHEMA, view.name, column), sql.Literal(meaning)
                )
            )


def check_role_name(role: str) -> None:
    if not role or "\x00" in role:
        raise RoleNameError("a role name must be given and may not contain NUL")
    if len(role.encode()) > MAX_ROLE_BYTES:
        raise RoleNameError(f"a role name has at most {MAX_ROLE_BYTES} bytes")
    if role.lower() in ("public", "none"):
        raise RoleNameError(f"{role!r} is not a role (PUBLIC would be every role)")


def grant_analytics(url: str, role: str) -> None:
    """Lets ``role`` read every view of the schema, and the views a later migrate adds; nothing
    else. The name travels quoted as an identifier, never formatted into the SQL."""
    check_role_name(role)
    with psycopg.connect(url, connect_timeout=5) as conn, conn.transaction():
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone() is None:
            raise UnknownRoleError(f"no role {role!r} on this server (CREATE ROLE it first)")
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [SCHEMA])
        if found.fetchone() is None:
            raise AnalyticsMissingError(f"no schema {SCHEMA!r}: run `taskwarden migrate` first")
        schema, who = sql.Identifier(SCHEMA), sql.Identifier(role)
        for statement in (
            "GRANT USAGE ON SCHEMA {schema} TO {who}",
            "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {who}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {who}",
        ):
            conn.execute(sql.SQL(statement).format(schema=schema, who=who))
