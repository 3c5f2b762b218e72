"""How a worker talks to Taskwarden: in this process (``LocalBackend``), or over REST
(``interfaces.remote_backend.RemoteBackend``). The worker loop is the same for both."""

from __future__ import annotations

from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool

from application import execution_reports as reports
from application.execution_reports import Beat
from application.scheduler import Claim, Scheduler
from application.store import Store
from infrastructure.settings import Settings


class Backend(Protocol):
    async def claim(self, worker_id: str) -> Claim | None: ...

    async def heartbeat(self, claim: Claim, waiting_on: str | None) -> Beat: ...

    async def output(self, claim: Claim, chunks: list[tuple[int, str, str]]) -> None: ...

    async def report(self, claim: Claim, message: dict[str, Any]) -> str | None: ...

    async def finish(
        self, claim: Claim, outcome: str, result: dict[str, Any]
    ) -> dict[str, Any]: ...


class LocalBackend:
    """Calls the application directly, off the event loop (the ledger is synchronous)."""

    def __init__(self, store: Store, scheduler: Scheduler, settings: Settings) -> None:
        self._store = store
        self._scheduler = scheduler
        self._settings = settings

    async def claim(self, worker_id: str) -> Claim | None:
        return await run_in_threadpool(self._scheduler.claim, worker_id)

    async def heartbeat(self, claim: Claim, waiting_on: str | None) -> Beat:
        lease = self._settings.lease_seconds
        return await run_in_threadpool(reports.heartbeat, self._store, claim, waiting_on, lease)

    async def output(self, claim: Claim, chunks: list[tuple[int, str, str]]) -> None:
        await run_in_threadpool(reports.record_output, self._store, claim, chunks)

    async def report(self, claim: Claim, message: dict[str, Any]) -> str | None:
        timeout = self._settings.hitl_timeout_seconds
        return await run_in_threadpool(reports.report, self._store, claim, message, timeout)

    async def finish(self, claim: Claim, outcome: str, result: dict[str, Any]) -> dict[str, Any]:
        return await run_in_threadpool(reports.finish, self._store, claim, outcome, result)
