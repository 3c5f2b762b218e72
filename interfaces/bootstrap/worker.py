"""The worker role (``taskwarden worker``): workers and the sweeper in this process, against the
store (``WorkerRole``; it also runs the projection runner unless
``TASKWARDEN_RUN_PROJECTIONS=0``, so that new work shows at once), or against a server's REST API
(``RemoteWorkerRole``: no store, no sweeper; the server's side does that)."""

from __future__ import annotations

from dataclasses import dataclass

from infrastructure.agent.catalog import load_agents
from infrastructure.settings import Settings
from interfaces.bootstrap.shutdown import stop_in_order
from interfaces.bootstrap.threads import Threads
from interfaces.execution_host import ExecutionHost
from interfaces.remote_backend import RemoteBackend
from interfaces.services import Services, build
from interfaces.worker_pool import STOPPED, WorkerPool


@dataclass(frozen=True)
class WorkerRole:
    services: Services
    execution: ExecutionHost
    threads: Threads

    @classmethod
    def from_settings(cls, settings: Settings, count: int) -> WorkerRole:
        services = build(settings)
        return cls(services, ExecutionHost(services, count), Threads("worker"))

    def start(self) -> None:
        """On the event loop that will run the agents."""
        self.threads.install()
        self.execution.start()

    async def stop(self) -> None:
        """Ends the agents and records the executions still held here as failed (retried when
        attempts are left), then the shared order of ``shutdown.py``."""
        running = [("workers", self.execution.stop)]
        await stop_in_order("worker", running, self.services, self.threads)


@dataclass(frozen=True)
class RemoteWorkerRole:
    backend: RemoteBackend
    pool: WorkerPool

    @classmethod
    def from_settings(
        cls, settings: Settings, server: str, token: str, count: int
    ) -> RemoteWorkerRole:
        backend = RemoteBackend(server, token, heartbeat_seconds=settings.heartbeat_seconds)
        return cls(backend, WorkerPool(backend, settings, load_agents(settings.agents_file), count))

    def start(self) -> None:
        """On the event loop that will run the agents."""
        self.pool.start()

    async def stop(self) -> int:
        """Ends the agents; returns how many executions were recorded as failed here because
        the pool could not record them."""
        await self.pool.stop()
        released = await self.backend.release_all("failed", STOPPED)
        await self.backend.close()
        return released
