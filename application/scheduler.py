"""Claims: a worker asks for work and gets the best queued execution it may start, or nothing.

The queue view proposes (priority plus aging, per-project caps, paused bands, spent budgets,
backoff); the Task decides: the start event is saved at the task's expected version, so of two
workers racing for one execution exactly one starts it, and the other moves on to the next
candidate. Claims in one process take turns and each waits until the view shows it, so caps count
every start.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError

from application.budgets import Gate
from application.claim_copies import ClaimCopies, ClaimReads
from application.store import Store
from domain.errors import DomainError
from domain.project import Project
from domain.queue import QueueControl, queue_control_id
from domain.task import Task
from domain.team_settings import TeamSettings, team_settings_id
from domain.values import Actor
from projections.execution_rows import QueueRow
from projections.read_model import ReadModel

CANDIDATES = 200
STALE = object()  # a claim's commit found a copy it decided on changed (``_start``)


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """What a worker needs to run one execution."""

    task_id: str
    team_id: str
    project_id: str
    execution_id: str
    attempt: int
    worker_id: str
    lease_until: float
    title: str
    description: str
    slug: str | None
    metadata: dict[str, Any]
    repository_url: str | None
    base_branch: str | None
    test_command: str | None
    options: dict[str, Any]


def worker_actor(worker_id: str, team_id: str, execution_id: str = "") -> Actor:
    return Actor(id=f"worker:{worker_id}", team_id=team_id, request_id=execution_id)


def effective_priority(row: QueueRow, now: float, aging_seconds: float) -> float:
    """Waiting ``aging_seconds`` counts as one priority level, so nothing starves."""
    waited = max(0.0, now - row.requested_at)
    return row.priority + (waited / aging_seconds if aging_seconds > 0 else 0.0)


class Scheduler:
    def __init__(
        self,
        store: Store,
        read_model: ReadModel,
        *,
        aging_seconds: float,
        lease_seconds: float,
        settle: Callable[[int], object] = lambda position: None,
    ) -> None:
        self._store = store
        self._read_model = read_model
        self._aging = aging_seconds
        self._lease = lease_seconds
        self._settle = settle  # waits until the view has applied a position
        self._turn = threading.Lock()
        self._copies = ClaimCopies(store)

    def claim(self, worker_id: str, *, team_id: str | None = None) -> Claim | None:
        """``team_id``: only that team's work (a remote worker's credentials are a team's).
        Decided on this process's copies of the queue controls, settings and projects
        (``application/claim_copies.py``); once more on fresh reads if one proved stale."""
        with self._turn:
            for fresh in (False, True):
                found = self._claim(worker_id, team_id, fresh=fresh)
                if found is not STALE:
                    return cast(Claim | None, found)
            return None

    def _claim(self, worker_id: str, team_id: str | None, *, fresh: bool) -> Claim | None | object:
        moment = self._store.clock.now()
        now = moment.timestamp()  # the views' unit
        if team_id is None:
            rows = self._read_model.queued(CANDIDATES)
        else:  # every queued row of the team, not the team's share of the top rows
            rows = [r for r in self._read_model.in_flight(team_id) if r.state == "queued"]
        if not rows:
            return None
        running: Counter[str] | None = None  # read once a capped project needs it
        ready = [r for r in rows if r.not_before <= now and not _expired(r, now)]
        ready.sort(key=lambda r: (-effective_priority(r, now, self._aging), r.requested_at))
        reads = self._copies.reads()
        bands: dict[str, tuple[QueueControl | None, bool]] = {}
        caps: dict[str, tuple[int | None, bool]] = {}

        def team_settings(team: str, again: bool) -> TeamSettings | None:
            return reads.find(TeamSettings, team_settings_id(team), team, fresh=fresh or again)

        budgets = Gate(self._store, self._read_model, moment, settings=team_settings)
        for row in ready:
            if not self._band_open(row, bands, reads, fresh=fresh):
                continue
            if not budgets.open(row.team_id, row.project_id):
                continue  # the team's daily limit or the project's budget is spent
            cap = self._cap(row, caps, reads, fresh=fresh)
            if cap is not None:
                if running is None:
                    running = self._running()
                if running[row.project_id] >= cap and not caps[row.project_id][1]:
                    del caps[row.project_id]  # a copy's cap refuses: decided again on a read
                    cap = self._cap(row, caps, reads, fresh=True)
                if cap is not None and running[row.project_id] >= cap:
                    continue
            claim = self._start(row, worker_id, moment, reads, fresh=fresh)
            if claim is not None:
                return claim
        return None

    def _running(self) -> Counter[str]:
        """Executions started per project, from the view (the claims of this process included:
        each waited until the view showed it)."""
        return Counter(r.project_id for r in self._read_model.in_flight() if r.worker_id)

    def _start(
        self, row: QueueRow, worker_id: str, now: datetime, reads: ClaimReads, *, fresh: bool
    ) -> Claim | None | object:
        """The claim of ``row``; None if it cannot be started (another worker won, the view is
        behind); ``STALE`` if its commit found a copy it relied on changed: nothing written."""
        task = self._store.find(Task, UUID(row.task_id), row.team_id)
        if task is None:  # gone: not a candidate
            return None
        if task.execution_id != row.execution_id:
            return None  # the view is behind: this execution is no longer the task's
        lease_until = now + timedelta(seconds=self._lease)
        by = worker_actor(worker_id, task.team_id, row.execution_id)
        relied = reads.relied(
            [
                queue_control_id(row.team_id),
                team_settings_id(row.team_id),
                UUID(row.project_id),
            ]
        )
        try:
            task.start_execution(row.execution_id, worker_id, by, lease_until, at=now)
            position = self._store.commit(task, versions=relied)
        except DomainError:
            return None  # started, cancelled or changed meanwhile: another worker won
        except IntegrityError:
            if fresh or not relied:
                return None  # another worker won
            reads.forget(list(relied))  # or a copy it relied on changed: read them again
            return STALE
        self._settle(position)
        return Claim(
            task_id=str(task.id),
            team_id=task.team_id,
            project_id=task.project_id,
            execution_id=row.execution_id,
            attempt=task.attempt,
            worker_id=worker_id,
            lease_until=lease_until.timestamp(),
            title=task.title,
            description=task.description,
            slug=task.slug,
            metadata=dict(task.metadata),
            repository_url=task.repository_url,
            base_branch=task.base_branch,
            test_command=task.test_command,
            options=dict(task.execution_options),
        )

    def _band_open(
        self,
        row: QueueRow,
        cache: dict[str, tuple[QueueControl | None, bool]],
        reads: ClaimReads,
        *,
        fresh: bool,
    ) -> bool:
        """Whether the row's priority band of its team's queue is open (never paused: no
        control yet); a copy's "paused" is decided again on a fresh read."""
        if row.team_id not in cache:
            control_id = queue_control_id(row.team_id)
            control = reads.find(QueueControl, control_id, row.team_id, fresh=fresh)
            cache[row.team_id] = (control, fresh)
        control, was_fresh = cache[row.team_id]
        if control is None or control.allows(row.priority):
            return True
        if was_fresh:
            return False
        del cache[row.team_id]
        return self._band_open(row, cache, reads, fresh=True)

    def _cap(
        self,
        row: QueueRow,
        cache: dict[str, tuple[int | None, bool]],
        reads: ClaimReads,
        *,
        fresh: bool,
    ) -> int | None:
        """The project's ``resource_limits.max_concurrent_tasks``; None: no cap."""
        if row.project_id not in cache:
            project = reads.find(Project, UUID(row.project_id), row.team_id, fresh=fresh)
            limit = (  # no such project: no cap
                project.resource_limits.get("max_concurrent_tasks") if project is not None else None
            )
            cache[row.project_id] = (int(limit) if limit is not None else None, fresh)
        return cache[row.project_id][0]


def _expired(row: QueueRow, now: float) -> bool:
    return row.expires_at is not None and row.expires_at <= now
