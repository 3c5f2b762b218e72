"""Which events a WebSocket subscription receives, and where each belongs.

A subscription follows a channel (``project_updates``, ``task_updates``, ``queue_status``,
``hitl``), narrowed to one task or one project or neither, for one principal: its team, and for a
project-scoped key its project. An event's task and project are read from the event: every
public event says where it belongs (``domain.place``).
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from application.public_events import PublicEvent

TASK_PARTS = frozenset({"task", "output", "question", "checkpoint", "experience"})
HITL_PARTS = frozenset({"question", "checkpoint", "experience"})
QUEUE_EVENTS = frozenset(
    {
        "task.execution_requested",
        "task.execution_started",
        "task.execution_finished",
        "task.expired_in_queue",
        "task.work_rejected",
        "task.cancelled",
    }
)


class Place(NamedTuple):
    """The task and the project an event belongs to (None: team-wide)."""

    task_id: str | None
    project_id: str | None

    @classmethod
    def of(cls, event: PublicEvent) -> Place:
        return cls(event.task_id, event.project_id)


class Spec(msgspec.Struct, frozen=True, kw_only=True):
    """What a subscription follows: a channel, narrowed to one task or one project, or neither."""

    channel: str
    task_id: str | None = None
    project_id: str | None = None

    @property
    def key(self) -> str:
        narrowed = self.task_id or self.project_id
        return f"{self.channel}:{narrowed}" if narrowed else self.channel

    def relevant(self, event: PublicEvent) -> bool:
        """Decided by the event's kind alone."""
        if event.aggregate == "budget":  # a limit reached: people, queue watchers, projects
            return self.channel in ("hitl", "queue_status", "project_updates")
        if self.channel == "queue_status":
            return event.type in QUEUE_EVENTS or event.aggregate == "queue"
        if self.channel == "hitl":
            return event.aggregate in HITL_PARTS
        if self.channel == "project_updates" and event.aggregate == "project":
            return True
        return event.aggregate in TASK_PARTS


class Filter:
    """Which events a subscription of one principal receives, and where each belongs."""

    def __init__(self, spec: Spec, team_id: str, scope: str | None) -> None:
        self.spec = spec
        self._team = team_id
        self._scope = scope  # a project-scoped key's project
        self.key = (team_id, scope, spec.key)  # filters with equal keys decide alike

    def place(self, event: PublicEvent) -> Place | None:
        """Where the event belongs if the subscription receives it; None if it does not."""
        if event.team_id != self._team or not self.spec.relevant(event):
            return None  # the team check also covers teams whose subject tokens collide
        if event.aggregate == "queue":
            return Place(None, None) if self._scope is None else None
        place = Place.of(event)
        if self._scope is not None and place.project_id != self._scope:
            return None
        if self.spec.task_id is not None and place.task_id != self.spec.task_id:
            return None
        if self.spec.project_id is not None and place.project_id != self.spec.project_id:
            return None
        return place
