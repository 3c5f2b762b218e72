"""The webhooks role (``taskwarden webhooks``, with NATS): the queue of every webhook from the
stream's ``webhooks`` durable consumer, and pings and redeliveries. Run one such process (one
consumer keeps each webhook's order); an attempt cut short is made again next run. No
projection runner."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from infrastructure.settings import Settings
from interfaces.bootstrap.shutdown import stop_in_order
from interfaces.bootstrap.threads import Threads
from interfaces.services import Services, build
from interfaces.webhook_host import WebhookHost


@dataclass(frozen=True)
class WebhooksRole:
    services: Services
    webhooks: WebhookHost
    threads: Threads

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhooksRole:
        own = msgspec.structs.replace(settings, run_projections=False, run_webhooks=True)
        services = build(own)
        return cls(services, WebhookHost(services), Threads("webhooks"))

    def start(self) -> None:
        """On the event loop that will send."""
        self.threads.install()
        self.webhooks.start()

    async def stop(self) -> None:
        running = [("webhooks", self.webhooks.stop)]
        await stop_in_order("webhooks", running, self.services, self.threads)
