"""The cost rollups (docs/costs.md, "Rollups"): what usage cost, summed per team, UTC day,
project, task, execution, agent, provider and model, kept up to date from each
``Task.UsageRecorded`` event as it is applied, so no query ever scans the usage in the log.

A row adds up what its usage events say. The cost is summed in whole hundred-millionths of a dollar
(``domain.usage.COST_DIGITS``), integers, so the sum does not depend on how the events were
batched: a rebuild reproduces every row exactly, whatever its batches.

The agent is the one the execution request named (its options), else the task's ``agent``
metadata, else ``default`` (the worker's configured default agent, which the log does not name).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC
from operator import add
from typing import Any

import msgspec

from domain.task_state import TaskState
from domain.usage import COST_DIGITS

UNITS = 10**COST_DIGITS  # cost units per dollar
DEFAULT_AGENT = "default"
UNKNOWN = ""  # a model or provider the usage did not name (stored as "", shown as null)
TOTALS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "requests",
    "calls",
    "cost_units",
)


class CostKey(msgspec.Struct, frozen=True, kw_only=True, order=True):
    team_id: str
    day: str  # YYYY-MM-DD, UTC
    project_id: str
    task_id: str
    execution_id: str
    agent: str
    provider: str
    model: str


class CostTotals(msgspec.Struct, kw_only=True):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    requests: int = 0
    calls: int = 0  # usage reports
    cost_units: int = 0  # hundred-millionths of a dollar

    def add(self, other: CostTotals) -> None:
        for name in TOTALS:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class CostFact(msgspec.Struct, frozen=True, kw_only=True):
    """What one usage event adds to its row."""

    key: CostKey
    totals: CostTotals


def agent_of(options: Mapping[str, Any] | None, task: TaskState | None) -> str:
    chosen = (options or {}).get("agent") or (task.metadata.get("agent") if task else None)
    return str(chosen) if chosen else DEFAULT_AGENT


def cost_units(cost_usd: float) -> int:
    return round(cost_usd * UNITS)


def usage_key(
    event: Any, options: Mapping[str, Any] | None, task: TaskState | None, task_id: str
) -> tuple[str, ...]:
    """The row of one ``Task.UsageRecorded`` event: a ``CostKey``'s fields, in their order.
    ``task_id`` is ``str(event.originator_id)``, which the caller has at hand."""
    return (
        event.team_id or (task.team_id if task else UNKNOWN),
        event.timestamp.astimezone(UTC).date().isoformat(),
        event.project_id or (task.project_id if task else UNKNOWN),
        task_id,
        event.execution_id,
        agent_of(options, task),
        event.provider or UNKNOWN,
        event.model or UNKNOWN,
    )


def usage_totals(event: Any) -> list[int]:
    """What one usage event adds to its row: ``TOTALS``, in their order."""
    return [
        event.input_tokens,
        event.output_tokens,
        event.cache_read_tokens,
        event.cache_write_tokens,
        event.reasoning_tokens or 0,
        event.requests,
        1,
        cost_units(event.cost_usd),
    ]


def add_usage(
    rows: dict[tuple[str, ...], list[int]],
    event: Any,
    options: Mapping[str, Any] | None,
    task: TaskState | None,
    task_id: str,
) -> None:
    """Adds one usage event to the batch's rows (key and totals as ``usage_key`` and
    ``usage_totals`` give them): one write per row touched, without an object per event."""
    key = usage_key(event, options, task, task_id)
    totals = usage_totals(event)
    summed = rows.get(key)
    rows[key] = totals if summed is None else list(map(add, summed, totals))


def cost_fact(event: Any, options: Mapping[str, Any] | None, task: TaskState | None) -> CostFact:
    """The row key and the totals of one ``Task.UsageRecorded`` event."""
    key = usage_key(event, options, task, str(event.originator_id))
    return CostFact(
        key=CostKey(**dict(zip(CostKey.__struct_fields__, key, strict=True))),
        totals=CostTotals(**dict(zip(TOTALS, usage_totals(event), strict=True))),
    )


def rolled_up(facts: Iterable[CostFact]) -> dict[CostKey, CostTotals]:
    """The facts of a batch summed by key: one write per row touched."""
    rows: dict[CostKey, CostTotals] = {}
    for fact in facts:
        rows.setdefault(fact.key, CostTotals()).add(fact.totals)
    return rows
