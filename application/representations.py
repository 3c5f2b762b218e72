"""The API shapes of aggregates (seed 000 field names, RFC 3339 times, durations in seconds)."""

from __future__ import annotations

from typing import Any

from domain.project import Project
from domain.task import Task
from domain.values import Priority, rfc3339


def task_data(task: Task) -> dict[str, Any]:
    actual = None
    if task.started_at is not None and task.completed_at is not None:
        actual = round((task.completed_at - task.started_at).total_seconds(), 3)
    return {
        "id": str(task.id),
        "slug": task.slug,
        "project_id": task.project_id,
        "title": task.title,
        "description": task.description,
        "status": task.status,
        "priority": Priority(task.priority).label,
        "progress_percentage": task.progress_percentage,
        "estimated_duration": task.estimated_duration,
        "actual_duration": actual,
        "assigned_to": task.assigned_to,
        "created_by": task.created_by,
        "created_at": rfc3339(task.created_on),
        "updated_at": rfc3339(task.modified_on),
        "started_at": rfc3339(task.started_at),
        "completed_at": rfc3339(task.completed_at),
        "tags": list(task.tags),
        "metadata": dict(task.metadata),
        "dependencies": list(task.dependencies),
        "repository_url": task.repository_url,
        "base_branch": task.base_branch,
        "ticket_id": task.ticket_id,
        "ticket_summary": task.ticket_summary,
        "test_command": task.test_command,
        "attempt": task.attempt,
        "execution_id": task.execution_id,
        "cancel_requested": task.cancel_requested,
        "result": task.result,
        "usage": {**task.usage, "models": list(task.usage["models"])},
        "waiting_on": task.waiting_on,
        "worker_id": task.worker_id,
        "lease_until": rfc3339(task.lease_until),
        "version": task.version,
    }


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
