"""Records the queue's attempts in batches, off the lanes' path.

A lane sends its head, hands the outcome here and, when the head succeeded, sends the next one at
once: attempts that arrive while a batch is being written go in the next batch, one transaction
each (``Attempts.record_many``). A lane whose head failed waits for the record (its next attempt
time, or the end of its attempts). A batch that cannot be written is logged and its deliveries
stay pending in the store: at most they are sent again after a restart (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from application.webhooks.attempts import Attempts, Outcome
from domain.webhook_delivery import WebhookDelivery

log = logging.getLogger("taskwarden.webhooks")
BATCH = 200  # attempts written per transaction at most


class Recorder:
    def __init__(self, attempts: Attempts) -> None:
        self._attempts = attempts
        self._pending: list[tuple[Outcome, asyncio.Future[WebhookDelivery]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._written = asyncio.Event()  # set while nothing waits to be written
        self._written.set()

    def add(self, outcome: Outcome) -> asyncio.Future[WebhookDelivery]:
        """Queues an outcome; the future has the recorded delivery."""
        recorded: asyncio.Future[WebhookDelivery] = asyncio.get_running_loop().create_future()
        recorded.add_done_callback(_retrieved)
        self._pending.append((outcome, recorded))
        self._written.clear()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="webhook-recorder")
        return recorded

    async def stop(self, grace: float = 5.0) -> None:
        """Writes what is pending (for ``grace`` seconds at most), then stops."""
        task, self._task = self._task, None
        if task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._written.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
                await self._write(batch)
            self._written.set()

    async def _write(self, batch: list[tuple[Outcome, asyncio.Future[WebhookDelivery]]]) -> None:
        try:
            recorded = await asyncio.to_thread(
                self._attempts.record_many, [outcome for outcome, _ in batch]
            )
        except Exception as failure:
            log.exception("recording %d webhook attempts failed", len(batch))
            for _, future in batch:
                if not future.done():
                    future.set_exception(failure)
            return
        for (_, future), delivery in zip(batch, recorded, strict=True):
            if not future.done():
                future.set_result(delivery)


def _retrieved(future: asyncio.Future[WebhookDelivery]) -> None:
    """A lane that went on does not wait for its record; its failure was logged."""
    if not future.cancelled():
        future.exception()
