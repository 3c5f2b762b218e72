"""The projects this process last read open, kept so that a create does not read its project again.

Creating a task reads its project only to decide that the task may be created there (the caller's,
live and active: ``Project.require_open``) and writes nothing to it. Reading it costs a round trip
and a replay on every create; this keeps the project as last read while it was open, by id, and a
create decides on that copy. The copy may be stale (another request, another process, archived or
deleted it since), so the create's commit relies on it unchanged: the event store writes the task
only if the project is still at the version read (``Store.commit(unchanged=...)``,
``infrastructure/unchanged.py``); if it is not, the create decides again on a fresh read, which
also replaces or drops the copy. Only open projects are kept: a refusal is always decided on a
fresh read. This process's own writes to a project drop its copy (``Store.commit``).
"""

from __future__ import annotations

from uuid import UUID

from application.kept import Kept
from domain.errors import DomainError
from domain.project import Project

SIZE = 4_096  # projects kept at most


class OpenProjects:
    def __init__(self, size: int = SIZE) -> None:
        self._known: Kept[UUID, Project] = Kept(size)

    def get(self, project_id: UUID) -> Project | None:
        """The copy read last while it was open; never to be changed by the caller."""
        return self._known.get(project_id)

    def keep(self, project: Project) -> None:
        """Keeps ``project`` if it is open, else drops the copy of it."""
        try:
            project.require_open()  # the one rule of what is open
        except DomainError:
            self.forget(project.id)
            return
        self._known.keep(project.id, project)

    def forget(self, project_id: UUID) -> None:
        self._known.drop(project_id)

    def __len__(self) -> int:
        return len(self._known)
