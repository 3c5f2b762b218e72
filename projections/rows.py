"""Row and query shapes of the read models: frozen, keyword-only msgspec Structs."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

TaskSort = Literal["created_at", "updated_at", "priority", "title", "status"]
ProjectSort = Literal["name", "created_at", "updated_at"]
Order = Literal["asc", "desc"]
PageNumber = Annotated[int, Meta(ge=1)]
PageSize = Annotated[int, Meta(ge=1, le=100)]


class Row(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every read-side shape. Subclasses repeat ``frozen=True``: msgspec inherits it, mypy
    does not (it would take a subclass for a mutable one)."""


class Keyset(Row, frozen=True):
    """A place in a sorted listing: the sort key and id of the last row served."""

    key: int | str
    id: str


class TaskQuery(Row, frozen=True):
    status: list[str] = []
    project_id: str | None = None
    assigned_to: str | None = None
    tags: list[str] = []  # a task matches if it has any of them
    priority: Annotated[int, Meta(ge=1, le=4)] | None = None  # minimum
    created_after: datetime | None = None
    created_before: datetime | None = None
    search: str | None = None
    sort: TaskSort = "created_at"
    order: Order = "desc"
    page: PageNumber = 1
    page_size: PageSize = 50
    after: Keyset | None = None  # a cursor's place: the rows after it, instead of a page number


class ProjectQuery(Row, frozen=True):
    status: list[str] = []
    created_by: str | None = None
    search: str | None = None
    sort: ProjectSort = "created_at"
    order: Order = "desc"
    page: PageNumber = 1
    page_size: PageSize = 50


class TaskRow(Row, frozen=True):
    """The API shape of a task (``task_data``, rendered by the same ``represent``), less what only
    the task itself shows (usage, waiting_on, worker_id, lease_until), plus its team and the last
    position applied."""

    id: str
    slug: str | None
    project_id: str
    title: str
    description: str
    status: str
    priority: str
    progress_percentage: int
    estimated_duration: float | None
    actual_duration: float | None
    assigned_to: str | None
    created_by: str
    created_at: str
    updated_at: str
    started_at: str | None
    completed_at: str | None
    tags: list[str]
    metadata: dict[str, Any]
    dependencies: list[str]
    repository_url: str | None
    base_branch: str | None
    ticket_id: str | None
    ticket_summary: str | None
    test_command: str | None
    attempt: int
    execution_id: str | None
    cancel_requested: bool
    result: dict[str, Any] | None
    version: int
    team_id: str
    position: int


class ProjectStats(Row, frozen=True):
    total_tasks: int = 0
    pending_tasks: int = 0
    queued_tasks: int = 0
    running_tasks: int = 0
    needs_input_tasks: int = 0
    awaiting_approval_tasks: int = 0
    completed_tasks: int = 0
    failed_tasks: int = 0
    cancelled_tasks: int = 0
    timed_out_tasks: int = 0
    completion_rate: float = 0.0
    average_task_duration: float | None = None


def project_stats(counts: dict[str, int], average_duration: float | None) -> ProjectStats:
    """Statistics from task counts by status and the mean duration of completed tasks."""
    total = sum(counts.values())
    per_status = {f"{status}_tasks": n for status, n in counts.items()}
    known = {k: v for k, v in per_status.items() if k in ProjectStats.__struct_fields__}
    return ProjectStats(
        total_tasks=total,
        completion_rate=round(counts.get("completed", 0) / total, 4) if total else 0.0,
        average_task_duration=None if average_duration is None else round(average_duration, 3),
        **known,
    )


class ProjectRow(Row, frozen=True):
    id: str
    slug: str | None
    name: str
    description: str
    status: str
    created_by: str
    created_at: str
    updated_at: str
    settings: dict[str, Any]
    resource_limits: dict[str, Any]
    cloned_from: str | None
    version: int
    team_id: str
    statistics: ProjectStats = ProjectStats()


class ActivityRow(Row, frozen=True):
    position: int
    timestamp: str
    action: str
    task_id: str | None
    task_title: str | None
    actor: str | None


class Page(Row, frozen=True):
    items: list[Any]
    total: int
    page: int
    page_size: int
    pages: int
    has_next: bool
    has_previous: bool


class TaskPage(Row, frozen=True):
    """A page of the task listing. ``page`` is None when the page was asked for by cursor;
    ``total`` is exact when ``total_exact``, else an estimate above the count bound
    (``infrastructure/sql_listing.py``); ``next_cursor`` is where the next page starts (None at
    the end), in the sort and order of this one."""

    items: list[Any]
    total: int
    total_exact: bool
    page: int | None
    page_size: int
    pages: int
    has_next: bool
    has_previous: bool
    next_cursor: str | None


def page_of(items: list[Any], total: int, page: int, page_size: int) -> Page:
    pages = math.ceil(total / page_size) if total else 0
    return Page(
        items=items,
        total=total,
        page=page,
        page_size=page_size,
        pages=pages,
        has_next=page < pages,
        has_previous=page > 1,
    )
