"""The relay role (``taskwarden relay``, with NATS): follows the log and publishes its events to
the stream. No projection runner. On stop, at worst the last batch is published again by the
next run (and dropped by the stream as a duplicate)."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from application.relay import Relay
from infrastructure.settings import Settings
from interfaces.bootstrap.shutdown import stop_in_order
from interfaces.bootstrap.threads import Threads
from interfaces.services import Services, build


@dataclass(frozen=True)
class RelayRole:
    services: Services
    threads: Threads

    @classmethod
    def from_settings(cls, settings: Settings) -> RelayRole:
        services = build(msgspec.structs.replace(settings, run_projections=False))
        return cls(services, Threads("relay"))

    @property
    def relay(self) -> Relay:
        return self.services.relay

    def start(self) -> None:
        """On the event loop that will publish."""
        self.threads.install()
        self.relay.start()

    async def stop(self) -> None:
        await stop_in_order("relay", [("relay", self.relay.stop)], self.services, self.threads)
