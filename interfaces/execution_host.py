"""Runs executions in this process: a worker pool and the sweeper, woken by the views."""

from __future__ import annotations

from infrastructure.agent.catalog import load_agents
from interfaces.services import Services
from interfaces.worker_backend import LocalBackend
from interfaces.worker_pool import Sweeper, WorkerPool


class ExecutionHost:
    def __init__(self, services: Services, count: int) -> None:
        settings = services.settings
        backend = LocalBackend(services.store, services.scheduler, settings)
        self.pool = WorkerPool(backend, settings, load_agents(settings.agents_file), count)
        self.sweeper = Sweeper(services.store, services.read_model)
        self._services = services

    def start(self) -> None:
        """On the event loop that will run the agents."""
        self.pool.start()
        self.sweeper.start()
        self._services.runner.on_advance(self.pool.poke)

    async def stop(self) -> None:
        await self.pool.stop()
        await self.sweeper.stop()
