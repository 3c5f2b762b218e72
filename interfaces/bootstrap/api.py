"""The api role (``taskwarden serve``): the HTTP API and the WebSocket gateway, and beside them
whatever this process runs of the rest: in-process workers and the sweeper (when
``Settings.worker_count``), the relay (``Settings.relay_in_process``), the webhook sender (pings
and redeliveries always; the queue when ``Settings.webhooks_in_process``), the programs started
by ``/api/commands``, and the projection runner (``Settings.run_projections``, started with the
services). The app's lifespan builds it (or is handed one), starts it and stops it; the routes
and the gateway read it through ``interfaces/http/role.py``."""

from __future__ import annotations

from dataclasses import dataclass

from application.programs.registry import ProgramRegistry
from infrastructure import malloc_arenas
from infrastructure.settings import Settings
from interfaces.bootstrap.shutdown import stop_in_order
from interfaces.bootstrap.threads import Threads
from interfaces.consumers import socket_guard
from interfaces.execution_host import ExecutionHost
from interfaces.services import Services, build
from interfaces.webhook_host import WebhookHost
from interfaces.ws.shared import Shared


@dataclass(frozen=True)
class ApiRole:
    services: Services
    execution: ExecutionHost  # workers and the sweeper: started when settings.worker_count
    webhooks: WebhookHost
    sockets: Shared  # what the WebSocket sessions share, with the guard of consumer websocket
    programs: ProgramRegistry
    threads: Threads

    @classmethod
    def from_settings(cls, settings: Settings, *, services: Services | None = None) -> ApiRole:
        """``services``: built by the caller (a test's clock, a benchmark's bus); the role owns
        them from then on and closes them when it stops."""
        malloc_arenas.limit()  # before the role's threads: infrastructure/malloc_arenas.py
        services = services or build(settings)
        return cls(
            services=services,
            execution=ExecutionHost(services, settings.worker_count),
            webhooks=WebhookHost(services),
            sockets=Shared(socket_guard(services)),
            programs=ProgramRegistry(services.store),
            threads=Threads("api"),
        )

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def start(self) -> None:
        """On the event loop that serves the app."""
        self.threads.install()
        if self.settings.worker_count > 0:
            self.execution.start()
        if self.settings.relay_in_process:  # the log's events to the bus
            self.services.relay.start()
        self.webhooks.start()
        self.sockets.guard.start()

    async def stop(self) -> None:
        """Programs are stopped and their end recorded; agents are ended and the executions
        they held recorded as failed; then the shared order of ``shutdown.py``."""
        running = [
            ("websocket", self.sockets.guard.stop),
            ("webhooks", self.webhooks.stop),
            ("workers", self.execution.stop),
            ("relay", self.services.relay.stop),
            ("programs", self.programs.close),
        ]
        await stop_in_order("api", running, self.services, self.threads)
