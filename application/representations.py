"""The API shapes of aggregates (seed 000 field names, RFC 3339 times, durations in seconds)."""

from __future__ import annotations

from typing import Any

from domain.project import Project
from domain.task import Task
from domain.task_state import represent
from domain.values import rfc3339


def task_data(task: Task) -> dict[str, Any]:
    """The task's state as the API shows it; the listing row renders the same function."""
    return represent(task.state)


def project_data(project: Project) -> dict[str, Any]:
    return {
        "id": str(project.id),
        "slug": project.slug,
        "name": project.name,
        "description": project.description,
        "status": project.status,
        "created_by": project.created_by,
        "created_at": rfc3339(project.created_on),
        "updated_at": rfc3339(project.modified_on),
        "settings": dict(project.settings),
        "resource_limits": dict(project.resource_limits),
        "cloned_from": project.cloned_from,
        "version": project.version,
    }
