"""Real ``taskwarden`` processes for the fault suite.

Each is started from the venv's ``taskwarden`` with an environment of its own and waited for on a
condition with a deadline (``serve``: ``/health`` answers; the others: the line they print once
they run), then killed with SIGKILL or stopped with SIGTERM by the test. ``Processes`` remembers
every process it started and the agents they spawned, and kills what is left at the end, whatever
happened. Output goes to a file per start, whose tail is shown when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.nats_server import free_port

BIN = Path(sys.executable).parent / "taskwarden"
START_SECONDS = 90.0  # a cold start on a busy 2-core machine takes a few seconds; allow plenty
READY_LINES = {
    "relay": "relaying to",
    "webhooks": "sending webhooks",
    "worker": "working:",
}


class Service:
    """One ``taskwarden <command>``; ``start()`` again after a kill is a restart (``serve``
    gets a new free port each time: nothing can have taken it)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.logs = logs
        self.starts = 0
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_paths: list[Path] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = START_SECONDS) -> Service:
        argv = [str(BIN), *self.args]
        if self.args[0] == "serve":
            self.port = free_port()
            argv += ["--host", "127.0.0.1", "--port", str(self.port)]
        log = self.logs / f"{self.name}-{self.starts}.log"
        self.starts += 1
        self.log_paths.append(log)
        with log.open("wb") as handle:
            self.process = subprocess.Popen(  # our own argv
                argv, env=self.env, stdout=handle, stderr=subprocess.STDOUT
            )
        self._wait_ready(log, time.monotonic() + timeout)
        return self

    def _wait_ready(self, log: Path, deadline: float) -> None:
        assert self.process is not None
        while not self._ready(log):
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.process.returncode}:\n{tail(log)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready in time:\n{tail(log)}")
            time.sleep(0.1)  # polling a port or a file: nothing to wait on

    def _ready(self, log: Path) -> bool:
        if self.args[0] == "serve":
            try:
                return httpx.get(self.url + "/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False
        line = READY_LINES[self.args[0]]
        return line in log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def children(self) -> list[int]:
        """Its child processes (a worker's agents, each the leader of a process group)."""
        found: list[int] = []
        if not self.alive():
            return found
        for thread in Path(f"/proc/{self.pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                found += [int(p) for p in (thread / "children").read_text().split()]
        return found

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: nothing runs on the way out."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code (None if it was killed)."""
        if not self.alive():
            return self.process.returncode if self.process else None
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def output(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.log_paths if p.exists())


class Processes:
    """Every service a test started; ``close()`` kills what still runs, and the agents."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.services: list[Service] = []
        self.orphans: list[int] = []  # agents of killed workers: process group leaders

    def service(self, name: str, *args: str, env: dict[str, str]) -> Service:
        service = Service(name, list(args), env, self.logs)
        self.services.append(service)
        return service

    def run(self, *args: str, env: dict[str, str], timeout: float = 120.0) -> str:
        """A command that ends by itself (``migrate``): its output; fails unless it exits 0."""
        done = subprocess.run(  # our own argv
            [str(BIN), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        assert done.returncode == 0, f"taskwarden {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def kill(self, service: Service) -> None:
        """SIGKILL a service; its agents (own process groups) are ended at the close."""
        self.orphans += service.children()
        service.kill()

    def close(self) -> None:
        for service in self.services:
            self.orphans += service.children()
            service.kill()
        for pid in self.orphans:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)

    def tails(self) -> Iterator[str]:
        for service in self.services:
            for path in service.log_paths:
                yield f"---- {path.name} ----\n{tail(path)}"


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no output)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
