"""Handlers for the task commands that edit a task: create, submit, update, delete."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from application import slugs
from application.commands import (
    CreateTask,
    DeleteTask,
    SubmitTask,
    TagTask,
    Targeted,
    UpdateTask,
    given,
)
from application.idempotency import Decision, Idempotency, write_once
from application.projects import default_project, kept_project, open_project
from application.representations import task_data
from application.results import Changed, Created, Deleted, Submitted
from application.store import Store, check_version, project_scope
from application.task_inputs import dependency, duration, new_task, priority, reaches
from domain.project import Project
from domain.task import UPDATABLE, Task
from domain.values import Actor, TaskStatus


def create_task(
    store: Store, cmd: CreateTask, by: Actor, idempotency: Idempotency | None = None
) -> Created:
    tries = 0

    def decide() -> Decision:
        nonlocal tries
        tries += 1  # the first try decides on this process's copy of the project, if any
        project = open_project(store, cmd.project_id, by.team_id, kept=tries == 1)
        deps = [
            str(dependency(store, ref, by.team_id).id) for ref in dict.fromkeys(cmd.dependencies)
        ]
        task = _task_of(cmd, by, project, deps)
        pending: list[Aggregate] = [task]
        if cmd.slug:
            pending.append(slugs.take(store, by.team_id, "task", cmd.slug, task.id))
        return task_data(task), pending, [project]  # written only if the project is unchanged

    return write_once(store, by.team_id, "create_task", idempotency, Created, decide)


async def create_task_soon(store: Store, cmd: CreateTask, by: Actor) -> Created | None:
    """``create_task`` on an event loop when it needs nothing from the store: no slug to claim,
    no dependencies to read, and this process keeps a copy of the project the caller sees
    (``application/open_projects.py``); the commit is awaited with no thread held. None when the
    create needs the store (or the copy proved stale: nothing was written), for ``create_task``
    to do off the loop. Without an ``Idempotency-Key`` only: a key is looked up in the store."""
    if cmd.slug or cmd.dependencies:
        return None
    project = kept_project(store, cmd.project_id, by.team_id)
    if project is None:
        return None
    task = _task_of(cmd, by, project, [])
    try:
        position = await store.commit_soon(task, unchanged=[project])
    except IntegrityError:  # the project changed since it was kept: nothing written
        store.open_projects.forget(project.id)
        return None
    return Created(data=task_data(task), position=position)


def _task_of(cmd: CreateTask, by: Actor, project: Project, deps: list[str]) -> Task:
    return new_task(
        by,
        str(project.id),
        cmd.title,
        description=cmd.description,
        priority=int(priority(cmd.priority)),
        tags=list(dict.fromkeys(cmd.tags)),
        metadata=cmd.metadata,
        assigned_to=cmd.assigned_to,
        estimated_duration=duration(cmd.estimated_duration),
        slug=cmd.slug,
        dependencies=deps,
        repository_url=cmd.repository_url,
        base_branch=cmd.base_branch,
        ticket_id=cmd.ticket_id,
        ticket_summary=cmd.ticket_summary,
        test_command=cmd.test_command,
    )


def submit_task(
    store: Store, cmd: SubmitTask, by: Actor, idempotency: Idempotency | None = None
) -> Submitted:
    """Seed 003: a repository task, created and queued in one step."""
    from application.executions import queue_new_task  # noqa: PLC0415 - avoids a cycle

    def decide() -> tuple[dict[str, Any], list[Aggregate]]:
        pending: list[Aggregate] = []
        project_id = cmd.project_id or project_scope()  # a project-scoped key: its project
        if project_id:
            project = store.load_live(Project, project_id, by.team_id, "project")
        else:
            project, created = default_project(store, by)
            pending.extend(created)
        project.require_open()
        title = cmd.title or cmd.ticket_summary or cmd.description.strip().splitlines()[0][:500]
        task = new_task(
            by,
            str(project.id),
            title or "task",
            description=cmd.description,
            priority=int(priority(cmd.priority)),
            repository_url=cmd.repository_url,
            base_branch=cmd.base_branch,
            ticket_id=cmd.ticket_id,
            ticket_summary=cmd.ticket_summary,
            test_command=cmd.test_command,
        )
        queue_new_task(task, by)
        return {"task_id": str(task.id), "status": task.status}, [*pending, task]

    return write_once(store, by.team_id, "submit_task", idempotency, Submitted, decide)


def update_task(store: Store, cmd: Targeted[UpdateTask], by: Actor) -> Changed:
    def decide() -> Changed:
        task = store.load_live(Task, cmd.target, by.team_id, "task")
        check_version(task, cmd.expected_version)
        pending = apply_update(store, task, given(cmd.command), by)
        position = store.commit(task, *pending)
        return Changed(data=task_data(task), position=position)

    return store.with_retries(decide)


def apply_update(store: Store, task: Task, fields: dict[str, Any], by: Actor) -> list[Aggregate]:
    """Applies each given field through its own domain method; returns other aggregates to save."""
    pending: list[Aggregate] = []
    plain = {k: v for k, v in fields.items() if k in UPDATABLE}
    if "estimated_duration" in plain:
        plain["estimated_duration"] = duration(plain["estimated_duration"])
    task.update(plain, by)
    if "priority" in fields:
        task.set_priority(priority(fields["priority"]), by)
    if "assigned_to" in fields:
        task.assign(fields["assigned_to"], by)
    if "tags" in fields:
        wanted = list(dict.fromkeys(fields["tags"]))
        task.remove_tags([t for t in task.tags if t not in wanted], by)
        task.add_tags(wanted, by)
    if "dependencies" in fields:
        pending += _replace_dependencies(store, task, fields["dependencies"], by)
    if "slug" in fields:
        pending += slugs.move(store, by.team_id, "task", task.slug, fields["slug"], task.id)
        task.change_slug(fields["slug"], by)
    if "status" in fields:
        target, reason = TaskStatus(fields["status"]), fields.get("status_reason")
        task.change_status(target, reason, by, at=store.clock.now())
    return pending


def _replace_dependencies(store: Store, task: Task, refs: list[str], by: Actor) -> list[Aggregate]:
    wanted = [dependency(store, ref, by.team_id) for ref in dict.fromkeys(refs)]
    wanted_ids = {str(t.id) for t in wanted}
    for dep_id in list(task.dependencies):
        if dep_id not in wanted_ids:
            task.remove_dependency(UUID(dep_id), by)
    for other in wanted:
        if str(other.id) not in task.dependencies:
            task.add_dependency(other, reaches(store, other, task.id, by.team_id), by)
    return []


def delete_task(store: Store, cmd: Targeted[DeleteTask], by: Actor) -> Deleted:
    def decide() -> Deleted:
        task = store.load_live(Task, cmd.target, by.team_id, "task")
        check_version(task, cmd.expected_version)
        task.delete(cmd.command.reason, by)
        claims = slugs.move(store, by.team_id, "task", task.slug, None, task.id)
        position = store.commit(task, *claims)
        data = {"task_id": str(task.id), "deleted_at": task_data(task)["updated_at"]}
        return Deleted(kind="task", data=data, position=position)

    return store.with_retries(decide)


def tag_task(store: Store, cmd: Targeted[TagTask], by: Actor) -> Changed:
    def decide() -> Changed:
        task = store.load_live(Task, cmd.target, by.team_id, "task")
        task.add_tags(cmd.command.add, by)
        task.remove_tags(cmd.command.remove, by)
        position = store.commit(task)
        return Changed(data=task_data(task), position=position)

    return store.with_retries(decide)
