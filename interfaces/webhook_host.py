"""Runs webhook delivery in this process: the sender for pings and redeliveries (always), and the
queue (``Dispatcher``) on the bus's durable ``webhooks`` consumer when this process sends.

With the in-process bus (no NATS) the server is the only process that can consume it, so it
sends, on its own event loop. With NATS JetStream the queue belongs to one sender process (one
consumer keeps each webhook's order): ``taskwarden webhooks`` (this host alone), or
``TASKWARDEN_RUN_WEBHOOKS=1`` on one API process.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from application.webhooks.attempts import Attempts
from application.webhooks.dispatch import CONSUMER, Dispatcher
from domain.webhook_url import Network, parse_networks
from infrastructure.webhook_sender import HttpSender
from interfaces.consumers import bus_head
from interfaces.consumers import state as consumer_state
from interfaces.services import Services


class WebhookHost:
    def __init__(self, services: Services, bus: Any = None) -> None:
        settings = services.settings
        self.allowed: tuple[Network, ...] = parse_networks(settings.webhook_allowed_networks)
        self.attempts = Attempts(
            services.store,
            HttpSender(self.allowed),
            user_agent=f"Taskwarden-Webhooks/{settings.version}",
        )
        self.bus = bus if bus is not None else getattr(services, "bus", None)
        self.dispatcher: Dispatcher | None = None
        self._sends = settings.webhooks_in_process
        self._services = services

    def start(self) -> None:
        """On the event loop that will send; without a bus there is nothing to consume."""
        if self.bus is None or not self._sends or self.dispatcher is not None:
            return
        services = self._services
        state = consumer_state(services.settings, CONSUMER, services.clock)
        quarantine = services.quarantine
        self.dispatcher = Dispatcher(
            self.attempts.store, self.bus, self.attempts, state=state, quarantine=quarantine
        )
        services.consumers.register(state, bus_head(self.bus, state))
        self.dispatcher.start()

    async def stop(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop()
            self.dispatcher = None
        await self.attempts.sender.aclose()

    def poke(self, webhook_id: UUID | str) -> None:
        if self.dispatcher is not None:
            self.dispatcher.poke(webhook_id)
