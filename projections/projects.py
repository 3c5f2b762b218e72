"""The project projection: evolves a ProjectRow with one event, one event type per method."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from domain.project import Project
from domain.values import rfc3339
from projections.rows import ProjectRow

Handler = Callable[["ProjectProjection", ProjectRow, Any], dict[str, Any] | None]
UPDATABLE = frozenset({"name", "description", "settings", "resource_limits"})


class ProjectProjection:
    """``evolve`` answers the row after the event, or None once the project is deleted."""

    def evolve(self, row: ProjectRow | None, event: Any, position: int) -> ProjectRow | None:
        if isinstance(event, Project.Created):
            return self.created(event)
        if row is None:
            return None
        handler = HANDLERS.get(type(event))
        if handler is None:
            return row
        changes = handler(self, row, event)
        if changes is None:
            return None
        changes |= {"updated_at": rfc3339(event.timestamp), "version": event.originator_version}
        return msgspec.structs.replace(row, **changes)

    def created(self, e: Any) -> ProjectRow:
        return ProjectRow(
            id=str(e.originator_id),
            slug=e.slug,
            name=e.name,
            description=e.description,
            status=e.status,
            created_by=e.actor,
            created_at=rfc3339(e.timestamp) or "",
            updated_at=rfc3339(e.timestamp) or "",
            settings=dict(e.settings),
            resource_limits=dict(e.resource_limits),
            cloned_from=e.cloned_from,
            version=e.originator_version,
            team_id=e.team_id,
        )

    def updated(self, row: ProjectRow, e: Any) -> dict[str, Any]:
        return {k: v for k, v in e.changes.items() if k in UPDATABLE}

    def slug_changed(self, row: ProjectRow, e: Any) -> dict[str, Any]:
        return {"slug": e.slug}

    def archived(self, row: ProjectRow, e: Any) -> dict[str, Any]:
        return {"status": "archived"}

    def reopened(self, row: ProjectRow, e: Any) -> dict[str, Any]:
        return {"status": "active"}

    def completed(self, row: ProjectRow, e: Any) -> dict[str, Any]:
        return {"status": "completed"}

    def deleted(self, row: ProjectRow, e: Any) -> None:
        return None


HANDLERS: dict[type, Handler] = {
    Project.Updated: ProjectProjection.updated,
    Project.SlugChanged: ProjectProjection.slug_changed,
    Project.Archived: ProjectProjection.archived,
    Project.Reopened: ProjectProjection.reopened,
    Project.Completed: ProjectProjection.completed,
    Project.Deleted: ProjectProjection.deleted,
}
