"""Runs executions in this process: a worker pool and the sweeper, woken by the views, and the
wake watch (``wake_watch.py``), which tells a running execution of its cancel at once and has
this process's views catch up at once with a request committed elsewhere."""

from __future__ import annotations

from infrastructure.agent.catalog import load_agents
from interfaces.execution_run import POLL_RUNNING
from interfaces.services import Services
from interfaces.wake_watch import WakeWatch
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
        wake_on_bus: bool = True,
    ) -> None:
        """``heartbeat``: seconds between a running execution's heartbeats; ``idle``: how long
        an idle worker sleeps when nothing wakes it; ``wake_on_bus`` False leaves cancels to the
        heartbeats and other processes' requests to the runner's poll (a benchmark's baseline)."""
        settings = services.settings
        backend = LocalBackend(services.store, services.scheduler, settings)
        agents = load_agents(settings.agents_file)
        self.pool = WorkerPool(backend, settings, agents, count, heartbeat=heartbeat, idle=idle)
        self.sweeper = Sweeper(services.store, services.read_model)
        self.wakes = (
            WakeWatch(services.bus, self.pool.nudge, services.runner.poke) if wake_on_bus else None
        )
        self._services = services

    def start(self) -> None:
        """On the event loop that will run the agents."""
        self.pool.start()
        self.sweeper.start()
        if self.wakes is not None:
            self.wakes.start()
        self._services.runner.on_advance(self.pool.poke)

    async def stop(self) -> None:
        if self.wakes is not None:
            await self.wakes.stop()
        await self.pool.stop()
        await self.sweeper.stop()
