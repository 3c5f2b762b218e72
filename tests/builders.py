"""A Task aggregate built straight through its constructor, for tests that bypass the handlers.

Every field has a plain default; a test names only what it cares about.
"""

from __future__ import annotations

from typing import Any

from domain.task import Task
from domain.values import Priority

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
