"""Listings from the read model, narrowed to what the caller may see.

A caller narrowed to one project (a project-scoped API key: ``application.store.project_scope``)
lists that project only: its task and item listings are forced to the project, naming another
project answers not found as a missing one does, and its project listing is built from the one
project (the read model has no id filter). A project or task named by a filter is loaded through
the Store first, so another team's (or, for a scoped caller, another project's) is not found
before the read model is asked anything. Then the caller waits for ``min_position`` if it asked,
and reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import msgspec

from application.errors import NotFoundError
from application.representations import project_data
from application.store import Store, project_scope
from domain.errors import RuleViolationError
from domain.project import Project
from domain.task import Task
from projections.cursor import decode_cursor
from projections.read_model import ReadModel
from projections.rows import (
    Page,
    ProjectQuery,
    ProjectRow,
    TaskPage,
    TaskQuery,
    TaskRow,
    page_of,
)


def narrow_tasks(store: Store, team_id: str, query: TaskQuery) -> TaskQuery:
    """The query of the team's task listing, its project filter resolved (a slug to its id) and,
    for a scoped caller, forced to the caller's project."""
    project_ref = query.project_id or project_scope()
    if not project_ref:
        return query
    project = store.load_live(Project, project_ref, team_id, "project")
    return msgspec.structs.replace(query, project_id=str(project.id))


def every_task(views: ReadModel, team_id: str, query: TaskQuery) -> Iterator[TaskRow]:
    """Every row of the team's task listing ``query`` selects, page by page by cursor: each page
    starts where the last ended, rather than after skipping every row before it."""
    while True:
        page = views.list_tasks(team_id, query)
        yield from page.items
        if page.next_cursor is None:
            return
        query = msgspec.structs.replace(query, after=decode_cursor(page.next_cursor)[2])


def tasks_page(store: Store, views: ReadModel, team_id: str, query: TaskQuery) -> TaskPage:
    """A page of the team's task listing, narrowed (``narrow_tasks``), its rows as stored JSON.

    A listing narrowed to a project named by id is read first without loading the project: the
    listing's own statement reads only tasks of a project the read model holds as the team's
    and not deleted, so a page with rows shows the project is the caller's. An empty page may
    be a project the read model does not know yet (just created), a deleted one or another
    team's: then the Store decides (not found, or the empty page stands)."""
    scope = project_scope()
    ref = query.project_id or scope
    known = _uuid(ref) if ref else None
    if known is None or scope not in (None, known):
        return views.list_tasks(team_id, narrow_tasks(store, team_id, query), raw=True)
    page = views.list_tasks(team_id, msgspec.structs.replace(query, project_id=known), raw=True)
    if not page.items:
        narrow_tasks(store, team_id, query)  # raises not found unless the caller's, live
    return page


def _uuid(ref: str) -> str | None:
    """``ref`` as an id's canonical text, or None if it is not an id (a slug)."""
    try:
        return str(UUID(ref))
    except ValueError:
        return None


def narrow_items(
    store: Store, team_id: str, project_ref: str | None, task_ref: str | None
) -> tuple[str | None, str | None]:
    """The project and task ids an item listing (questions, checkpoints, experiences) is
    narrowed to: the named ones, resolved, and for a scoped caller at least its project."""
    project_id = project_scope()
    if project_ref:
        project_id = str(store.load_live(Project, project_ref, team_id, "project").id)
    task_id = str(store.load_live(Task, task_ref, team_id, "task").id) if task_ref else None
    return project_id, task_id


def projects_page(store: Store, views: ReadModel, team_id: str, query: ProjectQuery) -> Page:
    """The team's projects; for a scoped caller, a page of at most its one project."""
    scope = project_scope()
    if scope is None:
        return views.list_projects(team_id, query)
    if query.search:
        raise RuleViolationError(
            "a project-scoped key lists one project: no search", field="search"
        )
    try:
        project = store.load_live(Project, scope, team_id, "project")
    except NotFoundError:  # the key's project was deleted: nothing left to list
        return page_of([], 0, query.page, query.page_size)
    matches = (not query.status or project.status in query.status) and (
        query.created_by is None or project.created_by == query.created_by
    )
    if not matches or query.page > 1:
        return page_of([], int(matches), query.page, query.page_size)
    stats = views.project_statistics(team_id, scope)
    row = ProjectRow(**project_data(project), team_id=team_id, statistics=stats)
    return page_of([row], 1, query.page, query.page_size)
