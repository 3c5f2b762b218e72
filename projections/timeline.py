"""Which events belong on a task's timeline, and as which kind: one definition for the read
model's ``tw_timeline`` index (written as the events are applied) and for the timeline pages
that read it (``application/timeline.py``).

A task's own events are of kind ``task`` unless they say something about its reviews, usage or
executions; its questions', checkpoints' and experiences' events are of the item's kind. Output
chunks (``tw_output``) and webhook deliveries (found from the page's positions) are not indexed
here: they have their own ways onto a page.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate

from domain.hitl import Checkpoint, Experience, HitlItem, Question
from domain.task import Task

KINDS = (
    "task",
    "reviews",
    "usage",
    "executions",
    "questions",
    "checkpoints",
    "experiences",
    "webhooks",
    "output",
)
INDEXED_KINDS = frozenset(KINDS) - {"webhooks", "output"}

# the task's own events by kind; every other task event is of kind "task"
TASK_KINDS: dict[type, str] = {
    Task.UsageRecorded: "usage",
    Task.ReviewRequested: "reviews",
    Task.WorkApproved: "reviews",
    Task.WorkRejected: "reviews",
    Task.ExecutionRequested: "executions",
    Task.ExecutionStarted: "executions",
    Task.LeaseRenewed: "executions",
    Task.ProgressReported: "executions",
    Task.PhaseChanged: "executions",
    Task.ExpiredInQueue: "executions",
    Task.ExecutionFinished: "executions",
}
ITEM_CLASSES: dict[str, type] = {
    "questions": Question,
    "checkpoints": Checkpoint,
    "experiences": Experience,
}
ITEM_NAMES = {"question": "questions", "checkpoint": "checkpoints", "experience": "experiences"}
OWN_KINDS = frozenset({"task", *TASK_KINDS.values()})  # the kinds of the task's own events


def event_classes(item: type) -> list[type]:
    """The event classes an aggregate class declares (its own, not its bases')."""
    return [
        v for v in vars(item).values() if isinstance(v, type) and issubclass(v, Aggregate.Event)
    ]


ITEM_EVENT_KINDS: dict[type, str] = {
    cls: kind for kind, item in ITEM_CLASSES.items() for cls in event_classes(item)
}


def entry_of(event: Any) -> tuple[str, str, str | None] | None:
    """``(task_id, team_id, kind)`` of an event on a task's timeline, None for any other event.
    The kind is None where the event alone does not say which kind of item it is of (a
    withdrawal written before withdrawals said so): the item's row in ``tw_hitl`` says it."""
    team_id = getattr(event, "team_id", None)
    if team_id is None:
        return None
    if isinstance(event, Task.Event):
        return str(event.originator_id), team_id, TASK_KINDS.get(type(event), "task")
    if not isinstance(event, HitlItem.Event):
        return None
    task_id = getattr(event, "task_id", None)
    if task_id is None:
        return None
    if isinstance(event, HitlItem.Withdrawn):
        return task_id, team_id, ITEM_NAMES.get(event.item) if event.item else None
    return task_id, team_id, ITEM_EVENT_KINDS.get(type(event))
