"""How rows are stored: the columns that are filtered and sorted on, and the row itself as JSON."""

from __future__ import annotations

from typing import Any

import msgspec

from domain.values import Priority
from projections.rows import ProjectRow, TaskRow


def to_json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def task_columns(row: TaskRow) -> dict[str, Any]:
    """The indexed columns of a task row (the whole row travels as JSON in ``data``)."""
    return {
        "id": row.id,
        "team_id": row.team_id,
        "project_id": row.project_id,
        "status": row.status,
        "priority": int(Priority[row.priority.upper()]),
        "title": row.title,
        "assigned_to": row.assigned_to,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "actual_duration": row.actual_duration,
        "data": to_json(row),
    }


def project_columns(row: ProjectRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "team_id": row.team_id,
        "status": row.status,
        "created_by": row.created_by,
        "name": row.name,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "data": to_json(row),
    }
