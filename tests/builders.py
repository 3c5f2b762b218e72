"""A Task aggregate built straight through its constructor, for tests that bypass the handlers
(every field has a plain default; a test names only what it cares about); and the command to
execute a task by its id or slug, as the routes and the WebSocket gateway send it."""

from __future__ import annotations

from typing import Any

from application.budgets import Spending
from application.commands import ExecuteTask, Targeted
from application.executions import request_execution
from application.idempotency import Idempotency
from application.results import Queued
from application.store import Store
from domain.task import Task
from domain.values import Actor, Priority
from projections.cost_rows import CostQuery
from projections.costs import CostTotals

DEFAULTS: dict[str, Any] = {
    "team_id": "team-1",
    "project_id": "project-1",
    "title": "Fix the login bug",
    "description": "",
    "priority": int(Priority.NORMAL),
    "tags": [],
    "metadata": {},
    "assigned_to": None,
    "estimated_duration": None,
    "slug": None,
    "dependencies": [],
    "repository_url": None,
    "base_branch": None,
    "ticket_id": None,
    "ticket_summary": None,
    "test_command": None,
    "actor": "creator",
    "request_id": "req-0",
}


def a_task(**fields: Any) -> Task:
    """A new task (its Created event pending) with ``fields`` over the defaults."""
    return Task(**{**DEFAULTS, **fields})


class NothingSpent:
    """The cost rollups of a store without usage (handler tests without a read model)."""

    def cost_totals(self, team_id: str, q: CostQuery) -> CostTotals:
        return CostTotals()


NOTHING_SPENT = NothingSpent()


def execute_task(
    store: Store,
    ref: str,
    cmd: ExecuteTask,
    by: Actor,
    idempotency: Idempotency | None = None,
    spending: Spending = NOTHING_SPENT,
) -> Queued:
    target = Targeted(target=ref, command=cmd)
    return request_execution(store, target, by, idempotency, spending=spending)
