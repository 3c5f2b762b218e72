"""The cost rollups (docs/costs.md, "Rollups") as the API answers them: seed 001's shapes
(``/api/costs/summary``, ``by-agent``, ``by-job``, ``daily``) and ours (``by-model``,
``by-project``, the rows), for the caller's team.

A caller narrowed to one project (a project-scoped key) reads that project's costs only; a
``project_id`` filter is resolved through the Store first (a slug to its id), so another team's
project, or for a scoped caller another project, is not found before the read model is asked.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import msgspec

from application.listings import narrow_items
from application.store import Store
from projections.cost_rows import GROUP_COLUMNS, CostGroup, CostQuery, CostRow, Grouping, dollars
from projections.costs import UNKNOWN, CostKey, CostTotals
from projections.read_model import ReadModel

COST_DIGITS = 8


class CostFilter(msgspec.Struct, frozen=True, kw_only=True):
    """What a request narrows to: a project (id or slug), UTC days (both included)."""

    project_ref: str | None = None
    day_from: date | None = None
    day_to: date | None = None
    page: int = 1
    page_size: int = 50


def narrowed(store: Store, team_id: str, given: CostFilter) -> CostQuery:
    project_id, _ = narrow_items(store, team_id, given.project_ref, None)
    return CostQuery(
        project_id=project_id,
        day_from=None if given.day_from is None else given.day_from.isoformat(),
        day_to=None if given.day_to is None else given.day_to.isoformat(),
        page=given.page,
        page_size=given.page_size,
    )


def amounts(totals: CostTotals) -> dict[str, Any]:
    """What a line says it cost: seed 001's ``cost_usd``, ``calls``, ``tokens_in`` (every input
    token: uncached, cache reads and cache writes) and ``tokens_out``, then each total apart."""
    tokens_in = totals.input_tokens + totals.cache_read_tokens + totals.cache_write_tokens
    return {
        "cost_usd": round(dollars(totals), COST_DIGITS),
        "calls": totals.calls,
        "tokens_in": tokens_in,
        "tokens_out": totals.output_tokens,
        "input_tokens": totals.input_tokens,
        "output_tokens": totals.output_tokens,
        "cache_read_tokens": totals.cache_read_tokens,
        "cache_write_tokens": totals.cache_write_tokens,
        "reasoning_tokens": totals.reasoning_tokens,
        "requests": totals.requests,
    }


def columns(kind: str) -> list[str]:
    """The columns of an answer's lines (a spreadsheet's header row, even with no line):
    ``rows``, ``daily`` or a grouping."""
    amounts_ = list(amounts(CostTotals()))
    if kind == "rows":
        return [*CostKey.__struct_fields__, *amounts_]
    if kind == "daily":
        return ["date", *amounts_]
    job = ["job_slug"] if kind == "task" else []
    return [*job, *GROUP_COLUMNS[kind], *amounts_]


def summary(store: Store, views: ReadModel, team_id: str, given: CostFilter) -> dict[str, Any]:
    query = narrowed(store, team_id, given)
    totals = views.cost_totals(team_id, query)
    agents = views.cost_groups(team_id, query, "agent")
    average = dollars(totals) / totals.calls if totals.calls else 0.0
    return {
        "total_cost_usd": round(dollars(totals), COST_DIGITS),
        "total_calls": totals.calls,
        "avg_cost_per_call": round(average, COST_DIGITS),
        "top_agent": agents[0].key["agent"] if agents else None,
        "total_tokens": totals.input_tokens
        + totals.cache_read_tokens
        + totals.cache_write_tokens
        + totals.output_tokens,
        **amounts(totals),
    }


def grouped(
    store: Store, views: ReadModel, team_id: str, given: CostFilter, by: Grouping
) -> list[dict[str, Any]]:
    """One line per agent, model, project or task (seed 001's job), costliest first."""
    query = narrowed(store, team_id, given)
    groups = views.cost_groups(team_id, query, by)
    if by == "task":
        slugs = views.task_slugs(team_id, [g.key["task_id"] for g in groups])
        return [_job(g, slugs.get(g.key["task_id"])) for g in groups]
    return [_line(g) for g in groups]


def daily(store: Store, views: ReadModel, team_id: str, given: CostFilter) -> list[dict[str, Any]]:
    """One line per UTC day from ``day_from`` to ``day_to`` (both given), a day without usage
    included with zeros."""
    if given.day_from is None or given.day_to is None:
        raise ValueError("daily costs need both days")
    query = narrowed(store, team_id, given)
    found = {g.key["day"]: g.totals for g in views.cost_groups(team_id, query, "day")}
    days = (given.day_to - given.day_from).days + 1
    lines = []
    for n in range(days):
        day = (given.day_from + timedelta(days=n)).isoformat()
        lines.append({"date": day, **amounts(found.get(day, CostTotals()))})
    return lines


def rows(store: Store, views: ReadModel, team_id: str, given: CostFilter) -> dict[str, Any]:
    """The rollup rows themselves, newest day first, a page at a time."""
    page = views.cost_rows(team_id, narrowed(store, team_id, given))
    items: list[CostRow] = page.items
    shown = [{**_shown(msgspec.to_builtins(r.key)), **amounts(r.totals)} for r in items]
    return {**msgspec.to_builtins(page), "items": shown}


def _shown(key: dict[str, str]) -> dict[str, str | None]:
    """A key as the API shows it: an unknown model or provider is null."""
    return {k: (None if v == UNKNOWN and k in ("model", "provider") else v) for k, v in key.items()}


def _line(group: CostGroup) -> dict[str, Any]:
    return {**_shown(group.key), **amounts(group.totals)}


def _job(group: CostGroup, slug: str | None) -> dict[str, Any]:
    task_id = group.key["task_id"]
    return {"job_slug": slug or task_id, **_line(group)}
