"""Workers in this process: each claims an execution, runs it, and claims again.

Idle workers sleep until the views move on (a new queued execution shows up there first) or a
poll interval passes. A running execution heartbeats every ``heartbeat`` seconds, or at once when
``nudge(task_id)`` says its task changed (``interfaces/wake_watch.py`` does on a cancel). A
sweeper does the housekeeping of ``application.sweeps`` every second. In embedded mode the API
process runs a pool; with Postgres, ``taskwarden worker`` runs one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid

from starlette.concurrency import run_in_threadpool

from application import sweeps
from application.scheduler import Claim
from application.store import Store
from infrastructure.agent.catalog import AgentSpec
from infrastructure.settings import Settings
from interfaces.execution_run import POLL_RUNNING, Pace, run_execution
from interfaces.worker_backend import Backend
from projections.read_model import ReadModel

log = logging.getLogger("taskwarden.worker")

IDLE_POLL_SECONDS = 1.0
STOPPED = {"error": "the worker stopped", "worker_stopped": True}
SWEEP_SECONDS = 1.0


def worker_name(index: int) -> str:
    """Unique per process and slot: host, pid, a random tag, the slot."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}-{index}"


class WorkerPool:
    def __init__(
        self,
        backend: Backend,
        settings: Settings,
        agents: dict[str, AgentSpec],
        count: int,
        *,
        heartbeat: float = POLL_RUNNING,
        idle: float = IDLE_POLL_SECONDS,
    ) -> None:
        self._backend = backend
        self._settings = settings
        self._agents = agents
        self._count = count
        self._heartbeat = heartbeat
        self._idle = idle  # seconds an idle worker sleeps when nothing wakes it
        self._nudges: dict[str, asyncio.Event] = {}  # task id -> its running execution's nudge
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.busy = 0

    @property
    def size(self) -> int:
        return self._count

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._tasks = [
            asyncio.ensure_future(self._work(worker_name(i))) for i in range(self._count)
        ]

    def poke(self, position: int = 0) -> None:
        """Thread-safe: something may be claimable now."""
        if self._loop is not None and self._wake is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._wake.set)

    def nudge(self, task_id: str) -> None:
        """Thread-safe: the task's running execution (if this pool runs it) heartbeats now."""
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._nudge, task_id)

    def _nudge(self, task_id: str) -> None:
        nudge = self._nudges.get(task_id)
        if nudge is not None:
            nudge.set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    async def _work(self, worker_id: str) -> None:
        assert self._wake is not None  # set by start()
        while True:
            # cleared before the claim reads the views, not after: a poke that lands while the
            # claim runs (the view moved on after the claim read it) stays set and the worker
            # claims again at once; cleared after the claim, it was lost and the worker slept a
            # whole idle interval with work queued
            self._wake.clear()
            try:
                claim = await self._backend.claim(worker_id)
            except Exception:  # the store may be down: wait and try again
                log.exception("worker %s: claiming failed", worker_id)
                claim = None
            if claim is None:
                # not asyncio.wait_for: on 3.11 it loses a cancel that lands as the wait
                # completes (cpython gh-86296), and stop() would wait for ever
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._idle):
                        await self._wake.wait()
                continue
            self.busy += 1
            nudge = self._nudges[claim.task_id] = asyncio.Event()  # one execution per task
            pace = Pace(running=self._heartbeat, nudge=nudge)
            try:
                await run_execution(claim, self._backend, self._settings, self._agents, pace)
            except asyncio.CancelledError:  # stopping: the agent is gone, its end is recorded
                await asyncio.shield(self._stopped(claim))
                raise
            except Exception:  # a bug in one run must not kill the worker
                log.exception("worker %s: execution %s crashed", worker_id, claim.execution_id)
            finally:
                self.busy -= 1
                if self._nudges.get(claim.task_id) is nudge:
                    del self._nudges[claim.task_id]

    async def _stopped(self, claim: Claim) -> None:
        """Failed, and retried when attempts are left; already ended: nothing to record."""
        try:
            await self._backend.finish(claim, "failed", STOPPED)
        except Exception as error:  # noqa: BLE001 - ended meanwhile, or the store is down
            log.info("execution %s: not recorded as stopped: %s", claim.execution_id, error)


class Sweeper:
    """Queue time-to-live, expired leases, overdue questions and checkpoints."""

    def __init__(self, store: Store, views: ReadModel) -> None:
        self._store = store
        self._views = views
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def sweep_once(self) -> int:
        return (
            sweeps.expire_queued(self._store, self._views)
            + sweeps.recover_leases(self._store, self._views)
            + sweeps.decide_overdue(self._store, self._views)
        )

    async def _run(self) -> None:
        while True:
            try:
                await run_in_threadpool(self.sweep_once)
            except Exception:  # logged; try again next time
                log.exception("sweep failed")
            await asyncio.sleep(SWEEP_SECONDS)
