"""Snapshots: a task of thousands of events loads from its newest snapshot and the events after it.

eventsourcing's own snapshotting (9.5, ``Application.take_snapshot``, ``Repository.get``): a
snapshot is the aggregate's state at one version, kept in a table of its own (``stored_snapshots``
on SQLite, ``taskwarden_snapshots`` on Postgres), never in the events table. A load reads the
newest snapshot at or below the version asked for and replays only the events after it.

Snapshots are derived data. They are taken from the stored events (a load of the aggregate at the
version that made one due, from the snapshot before it), never from an object a handler holds;
they hold nothing the events do not; they can be deleted at any time, and a load then replays.
Nothing but a load reads them: the log, its positions, the audit chain and every consumer read the
events table only. A snapshot that no longer decodes (its class gone, its state's fields changed)
is passed over, and the load replays the events.

When: eventsourcing's rule, an event whose version is a multiple of the interval
(TASKWARDEN_SNAPSHOT_INTERVAL) makes a snapshot due, and also a load that replayed two intervals'
events or more (a task from before snapshots, or a snapshot lost with a process; one interval
would also catch the snapshot the writer is about to take). Due snapshots are taken in a thread
of their own after the commit: no request waits for one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from itertools import chain
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.persistence import IntegrityError, PersistenceError, Transcoding

from domain.task import Task
from domain.task_state import STATE_FIELDS, TaskState

log = logging.getLogger("taskwarden.snapshots")

SNAPSHOTTED: tuple[type[Any], ...] = (Task,)  # aggregates whose history grows without bound
CLOSE_SECONDS = 5.0  # how long close() waits for the snapshots still due
LATE = 2  # a load that replayed this many intervals' events offers a snapshot


def replay(aggregate: Any, events: Iterable[Any]) -> Any:
    """eventsourcing's ``project_aggregate`` less its ``assert isinstance(event, Protocol)``,
    half of a replay's time (measured: 31 ms of a 509-event task's 62 under a profiler)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class TaskStateAsDict(Transcoding):
    """A task's state in a snapshot: its fields, read back only if they are the fields
    ``TaskState`` has now (else the snapshot is passed over and the task replayed)."""

    type = TaskState
    name = "task_state"

    def encode(self, obj: TaskState) -> dict[str, Any]:
        return dict(obj.__dict__)

    def decode(self, data: dict[str, Any]) -> TaskState:
        if set(data) != STATE_FIELDS:
            raise ValueError(f"a task state of other fields: {sorted(set(data) ^ STATE_FIELDS)}")
        return TaskState(**data)


class LedgerRepository(Repository[Any]):
    """eventsourcing's repository, replaying with ``replay``, passing over a snapshot that does
    not decode, and offering a snapshot of an aggregate that took long to replay."""

    def __init__(
        self,
        *args: Any,
        intervals: Mapping[type[Any], int],
        offer: Callable[[UUID, int], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.intervals = intervals
        self._offer = offer

    def get(self, aggregate_id: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("projector_func", replay)
        return super().get(aggregate_id, **kwargs)

    def _reconstruct_aggregate(
        self, aggregate_id: Any, version: int | None, projector_func: Any
    ) -> Any:
        read = self._read_together(aggregate_id, version)
        if read is not None:
            snapshot, events = read
            base = snapshot.originator_version if snapshot is not None else 0
        else:
            snapshot = self._newest_snapshot(aggregate_id, version)
            base = snapshot.originator_version if snapshot is not None else 0
            events = self.event_store.get(originator_id=aggregate_id, gt=base or None, lte=version)
        aggregate = projector_func(None, chain([snapshot] if snapshot else [], events))
        if aggregate is None:
            raise AggregateNotFoundError(
                f"Aggregate {aggregate_id!r} version {version!r} not found."
            )
        interval = self.intervals.get(type(aggregate))
        if version is None and interval and aggregate.version - base >= LATE * interval:
            self._offer(aggregate_id, aggregate.version)  # one is missing, not just on its way
        return aggregate

    def _read_together(self, aggregate_id: Any, version: int | None) -> tuple[Any, Any] | None:
        """The newest snapshot and the events after it read in one statement, where the store
        can (Postgres: ``select_from_snapshot``, one round trip where there were two on every
        load of a task); None where it cannot, or while the snapshots' table is missing. A
        snapshot that does not decode is passed over: the events are read again, all of them."""
        if self.snapshot_store is None:
            return None
        together = getattr(self.event_store.recorder, "select_from_snapshot", None)
        snapshots = getattr(self.snapshot_store.recorder, "events_table_name", None)
        if together is None or snapshots is None or self._apart:
            return None
        found = together(aggregate_id, snapshots, version)
        if found is None:  # no table: until the next start (after `taskwarden migrate`)
            self._apart = True
            return None
        stored, rest = found
        mapper = self.event_store.mapper
        snapshot: Any = None
        if stored is not None:
            try:
                snapshot = self.snapshot_store.mapper.to_domain_event(stored)
                snapshot.mutate(None)  # its class resolves, its state upcasts
            except Exception:  # noqa: BLE001 - derived data: replay the events instead
                log.warning(
                    "snapshot of %s not read; replaying its events", aggregate_id, exc_info=True
                )
                return None, self.event_store.get(originator_id=aggregate_id, lte=version)
        return snapshot, map(mapper.to_domain_event, rest)

    _apart = False  # the snapshots' table is missing: read them apart (and find none)

    def _newest_snapshot(self, aggregate_id: Any, version: int | None) -> Any:
        if self.snapshot_store is None:
            return None
        try:
            found = self.snapshot_store.get(
                originator_id=aggregate_id, desc=True, limit=1, lte=version
            )
            snapshot: Any = next(iter(found), None)
            if snapshot is not None:
                snapshot.mutate(None)  # its class resolves, its state upcasts
        except PersistenceError:
            raise  # the store failing is the load failing
        except Exception:  # noqa: BLE001 - derived data: replay the events instead
            log.warning(
                "snapshot of %s not read; replaying its events", aggregate_id, exc_info=True
            )
            return None
        return snapshot


class SnapshotWriter:
    """Takes the snapshots due, newest version per aggregate, in a thread of its own."""

    def __init__(self, take: Callable[[UUID, int], None]) -> None:
        self._take = take
        self._due: dict[UUID, int] = {}
        self._busy = False
        self._closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="snapshots", daemon=True)
        self._thread.start()

    def offer(self, aggregate_id: UUID, version: int) -> None:
        with self._changed:
            if self._closed:
                return
            self._due[aggregate_id] = max(version, self._due.get(aggregate_id, 0))
            self._changed.notify_all()

    def flush(self, timeout: float = CLOSE_SECONDS) -> bool:
        """Waits until every snapshot due has been taken (or failed); False if it timed out."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._due and not self._busy, timeout)

    def close(self) -> None:
        """Takes what is due (within ``CLOSE_SECONDS``), then stops."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join(CLOSE_SECONDS)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._due or self._closed)
                if not self._due:
                    return
                aggregate_id = next(iter(self._due))
                version = self._due.pop(aggregate_id)
                self._busy = True
            try:
                self._take(aggregate_id, version)
            except IntegrityError:
                pass  # taken already (another process, or an earlier offer)
            except Exception:  # noqa: BLE001 - a snapshot not taken costs a longer replay
                log.warning("snapshot of %s at %d not taken", aggregate_id, version, exc_info=True)
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()


def due(events: Iterable[Any], intervals: Mapping[type[Any], int]) -> dict[UUID, int]:
    """eventsourcing's rule (``Application._take_snapshots``), read from the events alone (the
    committer saves events, not aggregates): the aggregates with an event whose version is a
    multiple of their class's interval, at the newest such version."""
    found: dict[UUID, int] = {}
    for cls, interval in intervals.items():
        for event in events:
            if isinstance(event, cls.Event) and event.originator_version % interval == 0:
                found[event.originator_id] = max(
                    event.originator_version, found.get(event.originator_id, 0)
                )
    return found
