"""What a project's analytics read from the task facts (projections/task_facts.py): the figures of
one project over a window of UTC days, summed by the read model (infrastructure/sql_fact_views.py).

Two sets of a project's tasks are counted (docs/analytics.md, "What is counted"):

- tasks *finished* in the window (their last finish, ``finished_day``): outcomes, durations of
  completed executions, the on-time rate and each person's performance;
- tasks *created* in the window: time to first pickup and time waiting on people;
- per agent, tasks created or finished in the window: executions, retries and failure reasons.
"""

from __future__ import annotations

import msgspec


class FactWindow(msgspec.Struct, frozen=True, kw_only=True):
    team_id: str
    project_id: str
    day_from: str  # YYYY-MM-DD, UTC, both included
    day_to: str


class Spread(msgspec.Struct, frozen=True, kw_only=True):
    """Seconds: how many were measured, their sum, average and median (None: none measured)."""

    count: int = 0
    total: float = 0.0
    average: float | None = None
    median: float | None = None


class Outcomes(msgspec.Struct, frozen=True, kw_only=True):
    created: int = 0
    completed: int = 0
    failed: int = 0  # failed or timed out
    cancelled: int = 0
    on_time: int = 0  # completed executions within their estimate
    rated: int = 0  # completed executions with an estimate (the on-time denominator)


class DayCounts(msgspec.Struct, frozen=True, kw_only=True):
    day: str
    created: int = 0
    completed: int = 0
    failed: int = 0


class PersonFigures(msgspec.Struct, frozen=True, kw_only=True):
    """A person (the assignee, else the creator) over the tasks finished in the window."""

    person: str
    finished: int
    completed: int
    average_duration: float | None
    on_time: int
    rated: int


class AgentFigures(msgspec.Struct, frozen=True, kw_only=True):
    agent: str
    tasks: int
    executions: int
    retries: int  # executions beyond each task's first
    failures: int
    reasons: dict[str, int]  # each failed task's last failure reason: how many tasks


class Waits(msgspec.Struct, frozen=True, kw_only=True):
    """Time on people of the tasks created in the window: ended waits and the tasks that had
    one; ``open``: waits not ended yet (not in the time)."""

    waits: int = 0
    seconds: float = 0.0
    tasks: int = 0
    open: int = 0


class ProjectFigures(msgspec.Struct, frozen=True, kw_only=True):
    outcomes: Outcomes
    days: list[DayCounts]  # only the days with something; the answer fills the others
    duration: Spread
    pickup: Spread
    waits: Waits
    people: list[PersonFigures]
    agents: list[AgentFigures]
