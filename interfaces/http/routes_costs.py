"""The cost rollups (docs/costs.md, "Rollups"): totals, per day, model, project, agent and task
(seed 001's job), and the rows, for the caller's team, as JSON in the envelope or, with
``?format=csv``, as a spreadsheet (a header row, then one line per item)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from application import costs
from application.costs import CostFilter
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.errors import BadRequestError
from interfaces.http.inputs import PAGING, Query, actor, call, read_after
from interfaces.http.role import services_of, store_of
from projections.cost_rows import Grouping

FILTERS = {"from", "to", "project_id", "format"}
FORMATS = frozenset({"json", "csv"})
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_DAYS = 366


def _day(q: Query, name: str) -> date | None:
    value = q.text(name, 10)
    if not value:
        return None
    try:
        if not DAY.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequestError(f"{name} must be a date (YYYY-MM-DD)", field=name) from None


def _filter(
    request: Request, extra: frozenset[str] = frozenset(), paged: bool = False
) -> CostFilter:
    allowed = FILTERS | extra | (PAGING - {"sort", "order"} if paged else set())
    q = Query(request, allowed)
    q.choice("format", "json", FORMATS)
    first, last = _day(q, "from"), _day(q, "to")
    if first is not None and last is not None and first > last:
        raise BadRequestError("from must not be after to", field="from")
    page, size = q.paging() if paged else (1, 50)
    return CostFilter(
        project_ref=q.text("project_id", 100),
        day_from=first,
        day_to=last,
        page=page,
        page_size=size,
    )


async def _answer(
    request: Request, kind: str, read: Callable[..., Any], given: CostFilter, *args: Any
) -> Response:
    """``kind`` (``summary``, ``rows``, ``daily`` or a grouping) names the spreadsheet and its
    header row (``application.costs.columns``)."""
    await read_after(request)
    services = services_of(request)
    data = await call(
        read, services.store, services.read_model, actor(request).team_id, given, *args
    )
    if request.query_params.get("format") == "csv":
        return _csv(kind, _lines(data))
    return ok(request, {"items": data} if isinstance(data, list) else data)


def _lines(data: Any) -> list[dict[str, Any]]:
    """The lines of an answer: a list's items, a page's items, or the one summary."""
    if isinstance(data, list):
        return data
    return data["items"] if "items" in data else [data]


def _csv(kind: str, lines: list[dict[str, Any]]) -> Response:
    out = io.StringIO()
    header = list(lines[0]) if lines else costs.columns(kind)
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(lines)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="costs-{kind}.csv"'},
    )


async def summary(request: Request) -> Response:
    return await _answer(request, "summary", costs.summary, _filter(request))


async def listing(request: Request) -> Response:
    return await _answer(request, "rows", costs.rows, _filter(request, paged=True))


def _grouping(by: Grouping) -> Callable[[Request], Any]:
    async def grouped(request: Request) -> Response:
        return await _answer(request, by, costs.grouped, _filter(request), by)

    return grouped


async def daily(request: Request) -> Response:
    """``days`` (1 to 366, default 7) ending ``to`` (default today, UTC); or ``from`` to ``to``."""
    given = _filter(request, frozenset({"days"}))
    q = Query(request, FILTERS | {"days"})
    days = q.integer("days", None, 1, MAX_DAYS)
    if days is not None and given.day_from is not None:
        raise BadRequestError("give days or from, not both", field="days")
    last = given.day_to or store_of(request).clock.now().date()
    first = given.day_from or last - timedelta(days=(days or 7) - 1)
    if first > last:
        raise BadRequestError("from must not be after to", field="from")
    if (last - first).days >= MAX_DAYS:
        raise BadRequestError(f"at most {MAX_DAYS} days", field="from")
    bounded = CostFilter(project_ref=given.project_ref, day_from=first, day_to=last)
    return await _answer(request, "daily", costs.daily, bounded)


GROUPINGS: tuple[tuple[str, Grouping, str], ...] = (
    ("model", "model", "Cost per model and provider, costliest first"),
    ("project", "project", "Cost per project, costliest first"),
    ("agent", "agent", "Cost per agent, costliest first"),
    ("job", "task", "Cost per task (seed 001's job), costliest first"),
    ("execution", "execution", "Cost per execution (its task and agent), costliest first"),
)
QUERY = ("from", "to", "project_id", "format", "min_position")
ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/costs",
        listing,
        "The cost rollup rows (team, day, project, task, execution, agent, model), paged",
        "costs",
        query=(*QUERY, "page", "page_size", "limit", "offset"),
    ),
    Endpoint(
        "GET",
        "/api/costs/summary",
        summary,
        "Total cost, calls, tokens and the costliest agent",
        "costs",
        query=QUERY,
    ),
    Endpoint(
        "GET",
        "/api/costs/daily",
        daily,
        "Cost per UTC day, days without usage included (days 1 to 366, default 7)",
        "costs",
        query=(*QUERY, "days"),
    ),
    *(
        Endpoint(
            "GET",
            f"/api/costs/by-{name}",
            _grouping(by),
            text,
            "costs",
            query=QUERY,
        )
        for name, by, text in GROUPINGS
    ),
]
