"""Runs executions in this process: a worker pool and the sweeper, woken by the views, and the
cancel watch, which tells a running execution of its cancel at once (``cancel_watch.py``)."""

from __future__ import annotations

from infrastructure.agent.catalog import load_agents
from interfaces.cancel_watch import CancelWatch
from interfaces.execution_run import POLL_RUNNING
from interfaces.services import Services
from interfaces.worker_backend import LocalBackend
from interfaces.worker_pool import IDLE_POLL_SECONDS, Sweeper, WorkerPool


class ExecutionHost:
    def __init__(
        self,
        services: Services,
        count: int,
        *,
        heartbeat: float = POLL_RUNNING,
        idle: float = IDLE_POLL_SECONDS,
        cancel_at_once: bool = True,
    ) -> None:
        """``heartbeat``: seconds between a running execution's heartbeats; ``idle``: how long
        an idle worker sleeps when nothing wakes it; ``cancel_at_once`` False leaves cancels to
        the heartbeats (a benchmark's baseline)."""
        settings = services.settings
        backend = LocalBackend(services.store, services.scheduler, settings)
        agents = load_agents(settings.agents_file)
        self.pool = WorkerPool(backend, settings, agents, count, heartbeat=heartbeat, idle=idle)
        self.sweeper = Sweeper(services.store, services.read_model)
        self.cancels = CancelWatch(services.bus, self.pool.nudge) if cancel_at_once else None
        self._services = services

    def start(self) -> None:
        """On the event loop that will run the agents."""
        self.pool.start()
        self.sweeper.start()
        if self.cancels is not None:
            self.cancels.start()
        self._services.runner.on_advance(self.pool.poke)

    async def stop(self) -> None:
        if self.cancels is not None:
            await self.cancels.stop()
        await self.pool.stop()
        await self.sweeper.stop()
