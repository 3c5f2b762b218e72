"""One operation applied to many tasks, each done or refused alone: seed 000's bulk operations,
and the queue's reordering (``application/queues.py``).

An item's refusal (not found, a rule, a lost race) is part of the result, not a failure of the
whole request; anything else (the store down) fails the request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from eventsourcing.persistence import IntegrityError

from application import tasks
from application.commands import (
    BulkAssignData,
    BulkDeleteData,
    BulkPriorityData,
    BulkStatusData,
    BulkTagsData,
    BulkTasks,
    DeleteTask,
    TagTask,
    Targeted,
    UpdateTask,
)
from application.errors import NotFoundError, VersionConflictError
from application.results import Batch, Refused, Result
from application.store import Store
from domain.errors import DomainError
from domain.values import Actor

# what one item may be refused with; anything else fails the request
ITEM_ERRORS = (DomainError, NotFoundError, VersionConflictError, IntegrityError)

Operation = Callable[[str], Result]


def each(store: Store, refs: list[str], operation: Operation, data: dict[str, Any]) -> Batch:
    """Applies ``operation`` to every distinct ref in order; ``data`` says what it was."""
    done: list[str] = []
    refused: list[Refused] = []
    position = 0
    for ref in dict.fromkeys(refs):
        try:
            result = operation(ref)
        except ITEM_ERRORS as error:
            refused.append(Refused(ref, error))
        else:
            done.append(ref)
            position = max(position, result.position)
    position = position or store.max_position()  # nothing written: the state is as of now
    return Batch(data=data, done=done, refused=refused, position=position)


def bulk_tasks(store: Store, cmd: BulkTasks, by: Actor) -> Batch:
    """``data`` is checked for the operation first: a bad one refuses the whole request."""
    operation = _operation(store, cmd, by)
    return each(store, cmd.task_ids, operation, {"operation": cmd.operation})


def _operation(store: Store, cmd: BulkTasks, by: Actor) -> Operation:
    if cmd.operation == "update_status":
        s = msgspec.convert(cmd.data, BulkStatusData)
        fields: dict[str, Any] = {"status": s.status, "status_reason": s.reason}
        if s.progress_percentage is not None:
            fields["progress_percentage"] = s.progress_percentage
        return _update(store, UpdateTask(**fields), by)
    if cmd.operation == "assign":
        a = msgspec.convert(cmd.data, BulkAssignData)
        return _update(store, UpdateTask(assigned_to=a.assigned_to), by)
    if cmd.operation == "set_priority":
        p = msgspec.convert(cmd.data, BulkPriorityData)
        return _update(store, UpdateTask(priority=p.priority), by)
    if cmd.operation in ("add_tags", "remove_tags"):
        t = msgspec.convert(cmd.data, BulkTagsData)
        tag = TagTask(add=t.tags) if cmd.operation == "add_tags" else TagTask(remove=t.tags)
        return lambda ref: tasks.tag_task(store, Targeted(target=ref, command=tag), by)
    d = msgspec.convert(cmd.data, BulkDeleteData)
    delete = DeleteTask(reason=d.reason)
    return lambda ref: tasks.delete_task(store, Targeted(target=ref, command=delete), by)


def _update(store: Store, changes: UpdateTask, by: Actor) -> Operation:
    return lambda ref: tasks.update_task(store, Targeted(target=ref, command=changes), by)
