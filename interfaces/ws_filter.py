"""Which events a WebSocket subscription receives, and where each belongs.

A subscription follows a channel (``project_updates``, ``task_updates``, ``queue_status``,
``hitl``), narrowed to one task or one project or neither, for one principal: its team, and for a
project-scoped key its project. An event's task and project are read from the event when it
carries them (creating events, output), else looked up once per aggregate and remembered.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from typing import Any, NamedTuple
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError
from starlette.concurrency import run_in_threadpool

from application.public_events import PublicEvent, TeamIndex

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
    """The task and the project an event belongs to (None: not known, or team-wide)."""

    task_id: str | None
    project_id: str | None


class Lookup:
    """The answer needs the store (``Filter.place_now``)."""


LOOKUP = Lookup()


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
        if self.channel == "queue_status":
            return event.type in QUEUE_EVENTS or event.aggregate == "queue"
        if self.channel == "hitl":
            return event.aggregate in HITL_PARTS
        if self.channel == "project_updates" and event.aggregate == "project":
            return True
        return event.aggregate in TASK_PARTS


class Locator:
    """Where an aggregate belongs: read from the events that carry it, else loaded once from the
    store. Bounded (least recently used ids are forgotten); shared by the sockets of a process."""

    def __init__(self, repository: Any, size: int = 100_000) -> None:
        self._repository = repository
        self._size = size
        self._known: OrderedDict[str, Place] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, asyncio.Future[Place]] = {}  # loads under way (event loop)

    def known(self, event: PublicEvent) -> Place:
        """What needs no I/O (possibly partial)."""
        if event.aggregate == "project":
            return Place(None, event.aggregate_id)
        if event.aggregate == "queue":
            return Place(None, None)
        with self._lock:
            cached = self._known.get(event.aggregate_id)
        if cached is not None:
            return cached
        task = event.aggregate_id if event.aggregate == "task" else event.data.get("task_id")
        place = Place(task, event.data.get("project_id"))
        if place.task_id and place.project_id:
            self._remember(event.aggregate_id, place)
        return place

    async def locate(self, event: PublicEvent) -> Place:
        """Where the event belongs, loading its aggregate if need be: once, however many
        subscriptions ask at the same time (a thousand sockets on a project, an old task)."""
        place = self.known(event)
        if place.project_id is not None or event.aggregate not in TASK_PARTS:
            return place
        aggregate_id = event.aggregate_id
        loading = self._loading.get(aggregate_id)
        if loading is None:
            loading = asyncio.ensure_future(run_in_threadpool(self._load, aggregate_id))
            self._loading[aggregate_id] = loading
            loading.add_done_callback(lambda _: self._loading.pop(aggregate_id, None))
        return await asyncio.shield(loading)  # a waiter cancelled leaves the load to the others

    def _load(self, aggregate_id: str) -> Place:
        try:
            aggregate = self._repository.get(UUID(aggregate_id))
        except (ValueError, AggregateNotFoundError):
            return Place(None, None)
        task = getattr(aggregate, "task_id", None) or aggregate_id
        place = Place(str(task), getattr(aggregate, "project_id", None))
        self._remember(aggregate_id, place)
        return place

    def _remember(self, aggregate_id: str, place: Place) -> None:
        with self._lock:
            self._known[aggregate_id] = place
            self._known.move_to_end(aggregate_id)
            if len(self._known) > self._size:
                self._known.popitem(last=False)


class LockedIndex(TeamIndex):
    """The public events' team index, shared by the replays of a process's sockets."""

    def __init__(self, repository: Any, size: int = 100_000) -> None:
        super().__init__(repository, size)
        self._lock = threading.Lock()

    def describe(self, event: Any) -> tuple[str, str] | None:
        with self._lock:
            return super().describe(event)


class Filter:
    """Which events a subscription of one principal receives, and where each belongs."""

    def __init__(self, spec: Spec, team_id: str, scope: str | None, locator: Locator) -> None:
        self.spec = spec
        self._team = team_id
        self._scope = scope  # a project-scoped key's project
        self._locator = locator
        self.key = (team_id, scope, spec.key)  # filters with equal keys decide alike

    async def place(self, event: PublicEvent) -> Place | None:
        """Where the event belongs if the subscription receives it; None if it does not."""
        place = self.place_now(event)
        if isinstance(place, Lookup):  # LOOKUP, the only one
            return self._judge(await self._locator.locate(event))
        return place

    def place_now(self, event: PublicEvent) -> Place | None | Lookup:
        """As ``place`` without I/O: LOOKUP when the answer needs the store."""
        if event.team_id != self._team or not self.spec.relevant(event):
            return None  # the team check also covers teams whose subject tokens collide
        if event.aggregate == "queue":
            return Place(None, None) if self._scope is None else None
        place = self._locator.known(event)
        task_only = self.spec.task_id is not None and self._scope is None
        if place.project_id is None and not (task_only and event.aggregate == "task"):
            if event.aggregate in TASK_PARTS:
                return LOOKUP
        return self._judge(place)

    def _judge(self, place: Place) -> Place | None:
        if self._scope is not None and place.project_id != self._scope:
            return None
        if self.spec.task_id is not None and place.task_id != self.spec.task_id:
            return None
        if self.spec.project_id is not None and place.project_id != self.spec.project_id:
            return None
        return place
