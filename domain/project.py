"""The Project aggregate: a team's container of tasks, with settings and resource limits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from eventsourcing.domain import Aggregate, event

from domain.errors import DeletedError, InvalidTransitionError, ProjectArchivedError
from domain.place import Placed
from domain.values import Actor, ProjectStatus

UPDATABLE = frozenset({"name", "description", "settings", "resource_limits"})


class Project(Placed):
    if TYPE_CHECKING:  # what @event makes, which the type checker does not see
        Updated: ClassVar[type[Aggregate.Event]]
        SlugChanged: ClassVar[type[Aggregate.Event]]
        Archived: ClassVar[type[Aggregate.Event]]
        Reopened: ClassVar[type[Aggregate.Event]]
        Completed: ClassVar[type[Aggregate.Event]]
        Deleted: ClassVar[type[Aggregate.Event]]

    @event("Created")
    def __init__(
        self,
        *,
        team_id: str,
        name: str,
        description: str,
        slug: str | None,
        settings: dict[str, Any],
        resource_limits: dict[str, Any],
        status: str,
        cloned_from: str | None,
        actor: str,
        request_id: str,
    ) -> None:
        self.team_id = team_id
        self.name = name
        self.description = description
        self.slug = slug
        self.settings = dict(settings)
        self.resource_limits = dict(resource_limits)
        self.status = status
        self.cloned_from = cloned_from
        self.created_by = actor
        self.deleted = False

    def _require_live(self) -> None:
        if self.deleted:
            raise DeletedError("project was deleted", project_id=str(self.id))

    def require_open(self) -> None:
        """Tasks may be created or run only in a live, active project."""
        self._require_live()
        if self.status != ProjectStatus.ACTIVE.value:
            raise ProjectArchivedError(
                f"project is {self.status} and read-only", project_id=str(self.id)
            )

    def update(self, changes: dict[str, Any], by: Actor) -> None:
        self._require_live()
        effective = {k: v for k, v in changes.items() if k in UPDATABLE and getattr(self, k) != v}
        if effective:
            self._updated(changes=effective, actor=by.id, request_id=by.request_id)

    @event("Updated")
    def _updated(self, changes: dict[str, Any], actor: str, request_id: str) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    def change_slug(self, slug: str | None, by: Actor) -> None:
        self._require_live()
        if slug != self.slug:
            self._slug_changed(slug=slug, actor=by.id, request_id=by.request_id)

    @event("SlugChanged")
    def _slug_changed(self, slug: str | None, actor: str, request_id: str) -> None:
        self.slug = slug

    def set_status(self, status: ProjectStatus, by: Actor) -> None:
        self._require_live()
        if status.value == self.status:
            return
        if status == ProjectStatus.ARCHIVED:
            self._archived(actor=by.id, request_id=by.request_id)
        elif status == ProjectStatus.ACTIVE:
            self._reopened(actor=by.id, request_id=by.request_id)
        elif status == ProjectStatus.COMPLETED:
            self._completed(actor=by.id, request_id=by.request_id)
        else:  # pragma: no cover - the enum is closed
            raise InvalidTransitionError("unknown project status", status=status.value)

    @event("Archived")
    def _archived(self, actor: str, request_id: str) -> None:
        self.status = ProjectStatus.ARCHIVED.value

    @event("Reopened")
    def _reopened(self, actor: str, request_id: str) -> None:
        self.status = ProjectStatus.ACTIVE.value

    @event("Completed")
    def _completed(self, actor: str, request_id: str) -> None:
        self.status = ProjectStatus.COMPLETED.value

    def delete(self, by: Actor) -> None:
        self._require_live()
        self._deleted(actor=by.id, request_id=by.request_id)

    @event("Deleted")
    def _deleted(self, actor: str, request_id: str) -> None:
        self.deleted = True
