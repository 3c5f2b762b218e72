"""Handlers for project commands: create, update, delete, clone."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from application import slugs
from application.commands import (
    CloneProject,
    CreateProject,
    DeleteProject,
    Targeted,
    UpdateProject,
    given,
)
from application.idempotency import Idempotency, write_once
from application.representations import project_data
from application.results import Changed, Created, Deleted
from application.store import Store, check_version
from application.task_inputs import new_task
from domain.claim import SlugClaim, claim_id
from domain.project import Project
from domain.task import Task
from domain.values import Actor, ProjectStatus

DEFAULT_SLUG = "default"
# what a cloned task keeps: its content, not its identity (slug), links or progress
COPIED_FIELDS = (
    "description",
    "priority",
    "tags",
    "metadata",
    "assigned_to",
    "estimated_duration",
    "repository_url",
    "base_branch",
    "ticket_id",
    "ticket_summary",
    "test_command",
)


def _limits(value: Any) -> dict[str, Any]:
    return {f: getattr(value, f) for f in value.__struct_fields__ if getattr(value, f) is not None}


def create_project(
    store: Store, cmd: CreateProject, by: Actor, idempotency: Idempotency | None = None
) -> Created:
    def decide() -> tuple[dict[str, Any], list[Aggregate]]:
        project = Project(
            team_id=by.team_id,
            name=cmd.name,
            description=cmd.description,
            slug=cmd.slug,
            settings=cmd.settings,
            resource_limits=_limits(cmd.resource_limits),
            status=cmd.status,
            cloned_from=None,
            actor=by.id,
            request_id=by.request_id,
        )
        pending: list[Aggregate] = [project]
        if cmd.slug:
            pending.append(slugs.take(store, by.team_id, "project", cmd.slug, project.id))
        return project_data(project), pending

    return write_once(store, by.team_id, "create_project", idempotency, Created, decide)


def kept_project(store: Store, ref: str, team_id: str) -> Project | None:
    """This process's copy of the caller's open project ``ref`` (an id), if it keeps one."""
    try:
        project_id = UUID(ref)
    except ValueError:
        return None
    copy = store.open_projects.get(project_id)
    return copy if copy is not None and store.visible(copy, team_id) else None


def open_project(store: Store, ref: str, team_id: str, *, kept: bool) -> Project:
    """The caller's live and active project ``ref``, to create tasks in: this process's copy of
    it when ``kept`` and there is one (``application/open_projects.py``: the commit must then rely
    on it unchanged), else read from the store (and kept for the next create if open)."""
    try:
        project_id: UUID | None = UUID(ref)
    except ValueError:
        project_id = None  # a slug: resolved by the store
    if project_id is not None:
        copy = kept_project(store, ref, team_id) if kept else None
        if copy is not None:
            return copy
        if not kept:  # the copy proved stale: dropped, kept again below if still open
            store.open_projects.forget(project_id)
    project = store.load_live(Project, ref, team_id, "project")
    store.open_projects.keep(project)
    project.require_open()
    return project


def default_project(store: Store, by: Actor) -> tuple[Project, list[Aggregate]]:
    """The team's ``default`` project (seed 003 tasks name none), created on first use."""
    claim = store.find(SlugClaim, claim_id(by.team_id, "slug:project", DEFAULT_SLUG))
    if claim is not None and claim.holder is not None:
        return store.load_live(Project, claim.holder, by.team_id, "project"), []
    project = Project(
        team_id=by.team_id,
        name="Default",
        description="Tasks submitted without a project",
        slug=DEFAULT_SLUG,
        settings={},
        resource_limits={},
        status=ProjectStatus.ACTIVE.value,
        cloned_from=None,
        actor=by.id,
        request_id=by.request_id,
    )
    return project, [project, slugs.take(store, by.team_id, "project", DEFAULT_SLUG, project.id)]


def update_project(store: Store, cmd: Targeted[UpdateProject], by: Actor) -> Changed:
    def decide() -> Changed:
        project = store.load_live(Project, cmd.target, by.team_id, "project")
        check_version(project, cmd.expected_version)
        fields = given(cmd.command)
        if "resource_limits" in fields:
            fields["resource_limits"] = _limits(fields["resource_limits"])
        pending: list[Aggregate] = [project]
        if "slug" in fields:
            pending += slugs.move(
                store, by.team_id, "project", project.slug, fields["slug"], project.id
            )
            project.change_slug(fields["slug"], by)
        project.update(fields, by)
        if "status" in fields:
            project.set_status(ProjectStatus(fields["status"]), by)
        position = store.commit(*pending)
        return Changed(data=project_data(project), position=position)

    return store.with_retries(decide)


def delete_project(store: Store, cmd: Targeted[DeleteProject], by: Actor) -> Deleted:
    def decide() -> Deleted:
        project = store.load_live(Project, cmd.target, by.team_id, "project")
        check_version(project, cmd.expected_version)
        project.delete(by)
        claims = slugs.move(store, by.team_id, "project", project.slug, None, project.id)
        position = store.commit(project, *claims)
        return Deleted(kind="project", data={"project_id": str(project.id)}, position=position)

    return store.with_retries(decide)


def clone_project(
    store: Store, cmd: Targeted[CloneProject], by: Actor, task_ids: list[str]
) -> Created:
    """``task_ids``: the source project's live tasks (read by the caller from the listing)."""

    def decide() -> Created:
        source = store.load_live(Project, cmd.target, by.team_id, "project")
        wanted = cmd.command
        clone = Project(
            team_id=by.team_id,
            name=wanted.name,
            description=source.description,
            slug=wanted.slug,
            settings=source.settings if wanted.include_settings else {},
            resource_limits=source.resource_limits if wanted.include_settings else {},
            status=ProjectStatus.ACTIVE.value,
            cloned_from=str(source.id),
            actor=by.id,
            request_id=by.request_id,
        )
        pending: list[Aggregate] = [clone]
        if wanted.slug:
            pending.append(slugs.take(store, by.team_id, "project", wanted.slug, clone.id))
        copies = _copy_tasks(store, source, clone, task_ids, by) if wanted.include_tasks else []
        position = store.commit(*pending, *copies)
        data = project_data(clone)
        data["cloned_task_count"] = len(copies)
        return Created(data=data, position=position)

    return store.with_retries(decide)


def _copy_tasks(
    store: Store, source: Project, clone: Project, task_ids: list[str], by: Actor
) -> list[Task]:
    originals = [store.load(Task, UUID(i), by.team_id, "task") for i in task_ids]
    originals = [t for t in originals if not t.deleted and t.project_id == str(source.id)]
    copies: dict[str, Task] = {}
    for original in originals:
        copies[str(original.id)] = new_task(
            by,
            str(clone.id),
            original.title,
            **{field: getattr(original, field) for field in COPIED_FIELDS},
        )
    for original in originals:
        for dep in original.dependencies:
            if dep in copies:
                copy = copies[str(original.id)]
                copy.add_dependency(copies[dep], False, by)
    return list(copies.values())
