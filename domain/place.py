"""Where an event belongs: every event of every aggregate names its team, and where they apply its
project and task, so that whoever reads the log (projections, the relay, webhook routing, the
WebSocket feeds) reads the event alone.

An aggregate says which place fields its events carry (``Event.PLACE``); ``trigger_event`` fills
them from the aggregate, so the ``@event`` methods stay as they were and the fields they already
took (creating events take the team) are not repeated. A task's own id and a project's own id are
the event's ``originator_id``: a task's events carry its project, its questions carry both.

Events written before version 2 did not carry them. ``upcast_v1_v2`` reads them from the event
where it has them (creating events) and leaves the others ``None``; ``taskwarden migrate``
writes the missing ones into such stored events once (``infrastructure/place_migration.py``),
and an event still without its team is not published (``application.public_events``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from eventsourcing.domain import Aggregate

TEAM = ("team_id",)
IN_PROJECT = ("team_id", "project_id")
IN_TASK = ("team_id", "project_id", "task_id")


class Placed(Aggregate):
    """An aggregate whose every event names where it belongs."""

    class Event(Aggregate.Event):
        PLACE: ClassVar[tuple[str, ...]] = TEAM
        class_version: ClassVar[int] = 2
        team_id: str

        @classmethod
        def upcast_v1_v2(cls, state: dict[str, Any]) -> None:
            cls.unplaced(state)

        @classmethod
        def unplaced(cls, state: dict[str, Any]) -> None:
            """An older event: its place fields are None where it did not carry them (an event
            class already at version 2 calls this from its own next upcaster)."""
            for name in cls.PLACE:
                state.setdefault(name, None)

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        for name in event_class.PLACE:
            if name not in kwargs:
                kwargs[name] = getattr(self, name)
        super().trigger_event(event_class, **kwargs)


def place_of(event: Any) -> dict[str, str | None]:
    """The place fields an event carries (None where an old event had none)."""
    return {name: getattr(event, name, None) for name in getattr(event, "PLACE", ())}
