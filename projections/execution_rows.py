"""Rows of the execution read models: the queue, the HITL items, the agent output.

The queue row exists while a task has an execution in flight (queued, running, waiting on a
person); the scheduler chooses from it, and the aggregate decides (a stale row only costs a
refused claim). Times are epoch seconds here, so the scheduler compares numbers.
"""

from __future__ import annotations

from typing import Any

import msgspec


class QueueRow(msgspec.Struct, frozen=True, kw_only=True):
    task_id: str
    team_id: str
    project_id: str
    execution_id: str
    state: str  # queued, running (an agent runs or waits on a person)
    priority: int  # 1 (low) to 4 (urgent), as requested
    attempt: int
    requested_at: float  # when this execution was queued
    not_before: float  # a retry's backoff: not started before this
    expires_at: float | None  # the queue time-to-live: timed out if not started by then
    worker_id: str | None = None
    lease_until: float | None = None
    agent: str | None = None
    position: int = 0


class HitlRow(msgspec.Struct, frozen=True, kw_only=True):
    """A question, checkpoint or experience; ``data`` holds the kind's own fields."""

    id: str
    kind: str  # question, checkpoint, experience
    team_id: str
    project_id: str
    task_id: str
    execution_id: str
    status: str  # pending, answered, approved, rejected, withdrawn
    created_at: str
    decided_at: str | None
    decided_by: str | None
    deadline: float | None  # epoch seconds; None: waits forever
    data: dict[str, Any]
    position: int = 0


class OutputRow(msgspec.Struct, frozen=True, kw_only=True):
    position: int  # the chunk's place in the log: the cursor for paging
    task_id: str
    execution_id: str
    seq: int
    stream: str
    text: str
    timestamp: str


class HitlQuery(msgspec.Struct, frozen=True, kw_only=True):
    kinds: tuple[str, ...] = ("question", "checkpoint", "experience")
    statuses: tuple[str, ...] = ()  # empty: every status
    task_id: str | None = None
    limit: int = 100
    offset: int = 0
