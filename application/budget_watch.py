"""The budget watch: a consumer of the log that records the thresholds (50, 80, 100 %) a budget's
spending reaches, once each per period and limit, and in ``hard`` mode stops the agents running in
a scope whose budget is spent.

It follows the projection runner (woken as the views move on, then reading what they applied
``SETTLE_SECONDS`` later, a burst at once), so what it reads of the cost rollups already counts
the usage it is looking at. This process's own commits are handed to it as committed
(``hand``, ``application/handed.py``) and read from the store only across a gap. It looks at a
usage event's team and project, and at a change of a team's settings (a lowered limit may be
reached already). The check is of where the scope stands now, not of one event's step: a
threshold the watch could not record (a failure, a restart) is recorded at the scope's next
usage in the same period. It starts from the log's head; after a restart, a crossing is noticed
at the scope's next usage.

No single event can stop it: a check that fails is retried with backoff, and after the consumers'
``max_attempts`` the event is quarantined (consumer ``budgets``) and the watch goes on; a retry
asked for checks the event's scope again, as it stands then.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from application.budgets import Spending, Standing, standings
from application.consumer_state import QUARANTINE, ConsumerState
from application.handed import Handed
from application.retry_requests import RetryRequests
from application.store import Store
from domain.budget import PROJECT, Budget, budget_id, reached
from domain.errors import DomainError
from domain.task import Task
from domain.values import Actor

if TYPE_CHECKING:
    from eventsourcing.persistence import Notification, Recording

log = logging.getLogger(__name__)
NAME = "budgets"
USAGE = ":Task.UsageRecorded"
SETTINGS = ":TeamSettings.Updated"
BATCH = 500
HANDED_BOUND = BATCH * 10  # commits kept for the watch: more than this waiting, read them instead
# after a wake, the watch waits this long before it reads: a burst of commits is read at once
# (under a stream of creates the views move on a hundred times a second or more, each a read of
# the log here), and its read of a commit no longer runs while the same poke wakes the workers.
# bench/execution.py on Postgres: with the watch never woken, enqueue -> start p50 was 0.3 ms
# lower (three pairs of runs); with this wait, inside the benchmark's noise (p50 3.8-4.3 ms
# either way)
SETTLE_SECONDS = 0.05
Quarantine = Callable[[Any, Any, BaseException, int], None]  # notification, event, error, attempts
Running = Callable[[str], list[Any]]  # the team's running executions (queue rows)


class BudgetWatch:
    def __init__(
        self,
        store: Store,
        views: Spending,
        running: Running,
        *,
        state: ConsumerState | None = None,
        quarantine: Quarantine | None = None,
        retries: RetryRequests | None = None,
        poll_interval: float = 1.0,
        settle: float = SETTLE_SECONDS,
    ) -> None:
        self._store = store
        self._views = views
        self._running = running
        self.state = state or ConsumerState(NAME, clock=store.clock)
        self._quarantine = quarantine
        self._retries = retries
        self._poll = poll_interval
        self._settle = settle
        self.position = 0  # every event up to here was looked at
        self._target = 0  # the views have applied up to here
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._handed = Handed(HANDED_BOUND)  # this process's commits (``hand``)

    # ---- the thread ------------------------------------------------------------------------

    def start(self, position: int | None = None) -> None:
        """Watches from ``position`` (default: the head of the log now)."""
        if self._thread is not None and self._thread.is_alive():
            return
        start = self._store.max_position() if position is None else position
        self.position = self._target = start
        self.state.passed(start)
        self._stopping.clear()
        self.state.running = True
        self._thread = threading.Thread(target=self._run, name="budget-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.state.running = False

    def poke(self, position: int) -> None:
        """The views have applied ``position`` (the projection runner's listener)."""
        if position > self._target:
            self._target = position
            self._wake.set()

    def hand(self, recordings: Sequence[Recording[Any]]) -> None:
        """A commit of this process (``Store.on_recorded``), its events as committed: a round
        looks at them as they are when they follow on from its position, instead of reading
        them back from the store (under a stream of creates, a read of the log every
        ``SETTLE_SECONDS``). It does not wake the watch: the runner's advance does."""
        if recordings:
            self._handed.add(recordings)

    def wait_for(self, position: int, timeout: float) -> bool:
        """True once every event up to ``position`` was looked at (tests, benchmarks)."""
        with self._idle:
            return self._idle.wait_for(lambda: self.position >= position, timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.catch_up(self._target)
                self.state.succeeded()
                if self._retries is not None and self._retries.due():
                    self.settle_retries()
            except Exception as error:  # noqa: BLE001 - logged; the watch outlives an outage
                self.state.failed(None, error, answers=False)
                log.warning("budget watch failed: %r; retrying", error)
                self.state.wait(self._stopping)
                continue
            woken = self._wake.wait(self._poll)
            self._wake.clear()
            if woken:
                self._stopping.wait(self._settle)

    def settle_retries(self) -> None:
        """Checks again the scopes of the quarantined positions a retry was asked for."""
        if self._retries is None:
            return
        for entry in self._retries.take():
            retry = functools.partial(self._check_at, entry.position)
            self._retries.settle(entry, retry, self._answers)

    def _check_at(self, position: int) -> None:
        found = self._store.notification_at(position)
        if found is None:
            return
        event = self._store.decode(found)
        team = getattr(event, "team_id", None)
        if team is not None:
            project = getattr(event, "project_id", None) if found.topic.endswith(USAGE) else None
            self.check(team, project)

    # ---- one round -------------------------------------------------------------------------

    def catch_up(self, upto: int) -> None:
        """Looks at the events after ``position`` up to ``upto``."""
        while self.position < upto and not self._stopping.is_set():
            pairs = self._next(upto)
            if not pairs:
                return
            self._look(pairs)
            self._passed(pairs[-1][0].id)

    def _next(self, upto: int) -> list[tuple[Notification, Any]]:
        """The next events up to ``upto``, each with its domain event if it was handed (else
        None: decoded if it is looked at)."""
        handed = self._handed.after(self.position, min(BATCH, upto - self.position))
        if handed is not None:
            return handed
        found = self._store.notifications(self.position, BATCH)
        return [(n, None) for n in found if n.id <= upto]

    def _passed(self, position: int) -> None:
        with self._idle:
            self.position = max(self.position, position)
            self._idle.notify_all()
        self.state.passed(position)

    def _look(self, pairs: list[tuple[Notification, Any]]) -> None:
        """Checks each scope the batch touched once, after its last event there."""
        touched: dict[tuple[str, str | None], Any] = {}
        for notification, handed in pairs:
            topic = notification.topic
            if not (topic.endswith(USAGE) or topic.endswith(SETTINGS)):
                continue
            event = handed if handed is not None else self._store.decode(notification)
            project = getattr(event, "project_id", None) if topic.endswith(USAGE) else None
            team = getattr(event, "team_id", None)
            if team is None:
                continue  # written before events named their team: not migrated yet
            touched.pop((team, project), None)
            touched[(team, project)] = (notification, event)
        for (team, project), (notification, event) in touched.items():
            self._checking(team, project, notification, event)

    def _checking(self, team: str, project: str | None, notification: Any, event: Any) -> None:
        """Checks one scope until it goes through or its event is quarantined."""
        while not self._stopping.is_set():
            try:
                self.check(team, project)
                return
            except Exception as error:
                answers = self._answers()
                verdict = self.state.failed(notification.id, error, answers=answers)
                log.warning("budget check at %d failed: %r", notification.id, error)
                if not answers:
                    raise
                if verdict == QUARANTINE and self._quarantine is not None:
                    self._quarantine(notification, event, error, self.state.attempts)
                    self.state.was_quarantined(notification.id)
                    return
                self.state.wait(self._stopping)

    def _answers(self) -> bool:
        try:
            self._store.max_position()
        except Exception:  # noqa: BLE001 - any failure means: not now
            return False
        return True

    def check(self, team_id: str, project_id: str | None) -> list[tuple[Standing, list[int]]]:
        """Records the thresholds the team's limit, and the project's budget (None: every
        project's, after a change of settings), have reached and not recorded; stops what runs
        in a scope spent in hard mode. Returns what it recorded."""
        now = self._store.clock.now()
        projects = None if project_id is None else [project_id]
        recorded = []
        for standing in standings(self._store, self._views, team_id, projects, now):
            if not reached(standing.spent_units, standing.limit_units):
                continue
            new = self._store.with_retries(functools.partial(self._cross, standing))
            if new:
                recorded.append((standing, new))
            if 100 in new and standing.mode == "hard":
                self._stop_running(standing)
        return recorded

    def _cross(self, standing: Standing) -> list[int]:
        key = budget_id(standing.team_id, standing.scope, standing.project_id, standing.period)
        budget = self._store.find(Budget, key, standing.team_id) or Budget(
            team_id=standing.team_id,
            project_id=standing.project_id,
            scope=standing.scope,
            period=standing.period,
        )
        new = budget.cross(
            standing.spent_units, standing.limit_units, standing.mode, self._store.clock.now()
        )
        if new:
            self._store.commit(budget)
        return new

    def _stop_running(self, standing: Standing) -> None:
        """Asks every agent running in the spent scope to stop (a cancel, with the reason)."""
        by = Actor(id="system:budget", team_id=standing.team_id, request_id=standing.period)
        for row in self._running(standing.team_id):
            if row.state != "running":
                continue
            if standing.scope == PROJECT and row.project_id != standing.project_id:
                continue
            self._store.with_retries(functools.partial(self._cancel, row.task_id, standing, by))

    def _cancel(self, task_id: str, standing: Standing, by: Actor) -> None:
        task = self._store.find(Task, UUID(task_id), standing.team_id)
        if task is None or task.deleted:
            return
        try:
            task.cancel(f"budget exceeded: {standing.why()}", by, at=self._store.clock.now())
        except DomainError:
            return  # finished meanwhile
        self._store.commit(task)
