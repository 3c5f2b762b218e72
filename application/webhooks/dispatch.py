"""The webhook queue: events from the bus become deliveries, each webhook's sent in order.

Design (docs/api.md, "Webhooks"):

- **Queueing** (``application/webhooks/queueing.py``). A durable bus consumer (``webhooks``) hands
  over every public event, in order, at least once. Each becomes the deliveries of the webhooks
  that want it, in one transaction with the events stored after it (read ahead); then it is
  acknowledged, and the hand-overs of those read ahead are acknowledged without work. An event
  handed over again finds its deliveries already there and queues nothing twice.
- **Order.** Each webhook has a lane: its pending deliveries in the order they were queued (the
  bus's order, which is the log's). A lane sends its head only; a head waiting for a retry holds
  the deliveries behind it, while other webhooks' lanes go on. A delivery leaves the lane when it
  succeeded or failed for good (attempts exhausted, 410 Gone); then the next one goes. A lane
  reads its next ``PEEK`` heads in one trip to the store and sends them one after the other while
  they succeed; the attempts are recorded in batches beside it
  (``application/webhooks/recorder.py``), and a failed one is recorded before the lane looks at
  the store again.
- **State lives in the store.** The lanes are an index rebuilt at start: for each webhook, its
  delivery log is read backwards until the first delivery of an event that is finished (those
  before it finished earlier, since a lane finishes them in order). A head's due time, status and
  its webhook's state are read from the store before every attempt, so a redelivery requested
  through the API, or a webhook disabled, enabled or deleted there, is seen at the latest after
  ``recheck`` seconds (at once when this process is poked).
- **Disabled webhooks** keep their lane but send nothing until enabled again, then resume in
  order; while disabled no new deliveries are queued for them. A deleted webhook's lane is dropped.

One sender process runs the queue (embedded: the server; see interfaces/webhook_host.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from application.consumer_state import ConsumerState
from application.ports import Bus
from application.public_events import PublicEvent
from application.quarantine import QuarantineService
from application.store import Store
from application.webhooks import logs as webhook_logs
from application.webhooks.attempts import Attempts, Outbound, Outcome
from application.webhooks.poison import QueueGuard
from application.webhooks.queueing import Queueing
from application.webhooks.recorder import Recorder
from domain.webhook import Webhook
from domain.webhook_delivery import EVENT, WebhookDelivery

log = logging.getLogger("taskwarden.webhooks")

CONSUMER = "webhooks"
SUBJECTS = "taskwarden.>"
PAGE = 100  # delivery log entries read at a time when recovering
PEEK = 32  # heads of a lane read (and signed) at a time


class Head(msgspec.Struct, frozen=True):
    gone: bool  # the webhook was deleted
    held: bool  # the webhook is disabled
    finished: bool
    due: datetime | None
    request: Outbound | None = None  # signed now, when it is to be sent now


class Lane:
    def __init__(self, webhook_id: UUID) -> None:
        self.webhook_id = webhook_id
        self.queue: deque[UUID] = deque()
        self.recording: set[UUID] = set()  # sent, left the queue, their records not yet written
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class Dispatcher:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        attempts: Attempts,
        *,
        consumer: str = CONSUMER,
        subjects: str = SUBJECTS,
        concurrency: int = 16,
        recheck: float = 30.0,
        pause_on_error: float = 5.0,
        state: ConsumerState | None = None,
        quarantine: QuarantineService | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.attempts = attempts
        self.consumer = consumer
        self.subjects = subjects
        self.recheck = recheck
        self.pause_on_error = pause_on_error
        self._sending = asyncio.Semaphore(concurrency)
        # reading ahead in the store is right only for a consumer of every public event
        takes_all = subjects == f"{getattr(bus, 'prefix', 'taskwarden')}.>"
        self._queueing = Queueing(store, read_ahead=takes_all)
        self.recorder = Recorder(attempts)
        self._lanes: dict[UUID, Lane] = {}
        self._main: asyncio.Task[None] | None = None
        state = state or ConsumerState(consumer, clock=store.clock)
        self.guard = QueueGuard(self, state, quarantine)

    # ---- life --------------------------------------------------------------------------

    def start(self) -> None:
        """On the event loop that will send."""
        self._main = asyncio.create_task(self._run(), name="webhook-dispatcher")
        self.guard.start()

    async def stop(self) -> None:
        """An attempt cut short is not recorded: it is made again after a restart."""
        tasks = [t for t in [self._main, *(lane.task for lane in self._lanes.values())] if t]
        tasks += self.guard.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.recorder.stop()
        self._lanes.clear()

    def poke(self, webhook_id: UUID | str) -> None:
        """Something changed for this webhook (enabled, redelivery asked): look again now."""
        lane = self._lanes.get(UUID(str(webhook_id)))
        if lane is not None:
            lane.wake.set()

    def pending(self) -> dict[str, int]:
        """Deliveries waiting per webhook (what this process knows of)."""
        return {str(k): len(lane.queue) for k, lane in self._lanes.items() if lane.queue}

    async def _run(self) -> None:
        while True:
            try:
                await self.recover()
                async for delivery in self.bus.durable(self.consumer, self.subjects):
                    await self.guard.take(delivery.event)  # queued, or quarantined
                    await delivery.ack()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook consumer failed; starting again")
                await asyncio.sleep(self.pause_on_error)

    # ---- queueing ------------------------------------------------------------------------

    async def accept(self, event: PublicEvent, *, ahead: bool = True) -> list[UUID]:
        """Queues the event for the webhooks that want it, and with it the public events stored
        after it (up to ``LOOKAHEAD``) when this consumer takes every event: the bus hands
        events over one at a time, each waiting for the one before to be acknowledged, so the
        store saves a transaction per event (``Queueing.take``). Returns the new deliveries."""
        queued = await asyncio.to_thread(self._queueing.take, event, ahead)
        for webhook_id, key in queued:
            self._push(webhook_id, key)
        return [key for _, key in queued]

    def _push(self, webhook_id: UUID, key: UUID) -> None:
        lane = self._lanes.get(webhook_id)
        if lane is None:
            lane = self._lanes[webhook_id] = Lane(webhook_id)
        lane.queue.append(key)
        if lane.task is None or lane.task.done():
            lane.task = asyncio.create_task(self._drain(lane), name=f"webhook-{webhook_id}")

    # ---- sending -------------------------------------------------------------------------

    async def _drain(self, lane: Lane) -> None:
        try:
            while lane.queue:
                try:
                    await self._round(lane)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("webhook %s: sending failed; trying again", lane.webhook_id)
                    await self._sleep(lane, self.pause_on_error)
        finally:
            if not lane.queue and not lane.recording and self._lanes.get(lane.webhook_id) is lane:
                del self._lanes[lane.webhook_id]

    async def _round(self, lane: Lane) -> None:
        """Reads the lane's next heads in one trip to the store, then sends them in order while
        they succeed; a failure, a head not due, or a poke ends the round (the next one reads
        the store again)."""
        lane.wake.clear()
        keys = list(itertools.islice(lane.queue, PEEK))
        heads = await asyncio.to_thread(self._peek, lane.webhook_id, keys)
        for key, head in zip(keys, heads, strict=False):
            if lane.wake.is_set():
                return  # poked: a redelivery, or the webhook changed
            if head.gone:
                lane.queue.clear()
                return
            if head.finished:
                _pop(lane, key)
                continue
            if head.request is None:
                now = self.store.clock.now()
                wait = 0.0 if head.due is None else (head.due - now).total_seconds()
                await self._sleep(lane, None if head.held else wait)
                return
            async with self._sending:
                at = self.store.clock.now()
                response = await self.attempts.post(head.request)
            recorded = self.recorder.add(Outcome(lane.webhook_id, key, at, response))
            status = response.status
            if status is not None and 200 <= status < 300:  # the next goes while this is recorded
                lane.recording.add(key)
                recorded.add_done_callback(_forgetting(lane.recording, key))
                _pop(lane, key)
                continue
            if (await recorded).finished:
                _pop(lane, key)
            return

    def _peek(self, webhook_id: UUID, keys: list[UUID]) -> list[Head]:
        """The heads' states, with signed requests for those due now, in order up to the first
        that is not to be sent now (those behind it wait anyway)."""
        webhook = self.store.get(Webhook, webhook_id)
        now = self.store.clock.now()
        heads: list[Head] = []
        for key in keys:
            delivery = self.store.get(WebhookDelivery, key)
            due = delivery.next_attempt_at
            sendable = webhook.enabled and not webhook.deleted and not delivery.finished
            request = None
            if sendable and (due is None or due <= now):
                request = self.attempts.outbound(
                    webhook, delivery, delivery.payload, delivery.event_type
                )
            heads.append(
                Head(
                    gone=webhook.deleted,
                    held=not webhook.enabled,
                    finished=delivery.finished,
                    due=due,
                    request=request,
                )
            )
            if request is None and not delivery.finished:
                break
        return heads

    async def _sleep(self, lane: Lane, seconds: float | None) -> None:
        """Until ``seconds`` have passed (None: until the next recheck) or someone pokes."""
        wait = self.recheck if seconds is None else min(seconds, self.recheck)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await lane.wake.wait()
        lane.wake.clear()

    # ---- recovery ------------------------------------------------------------------------

    async def recover(self) -> int:
        """Rebuilds the lanes from the store; returns how many deliveries are pending."""
        found = await asyncio.to_thread(self._pending)
        for webhook_id, keys in found.items():
            lane = self._lanes.get(webhook_id)
            known = set(lane.queue) | lane.recording if lane is not None else set()
            for key in keys:
                if key not in known:
                    self._push(webhook_id, key)
        return sum(len(keys) for keys in found.values())

    def _pending(self) -> dict[UUID, list[UUID]]:
        found: dict[UUID, list[UUID]] = {}
        for listed in webhook_logs.all_webhooks(self.store).get():
            webhook = self.store.get(Webhook, UUID(listed.webhook_id))
            if webhook.deleted:
                continue
            keys = list(self._unfinished(webhook.id))
            if keys:
                found[webhook.id] = keys[::-1]
        return found

    def _unfinished(self, webhook_id: UUID) -> Iterator[UUID]:
        """Pending event deliveries, newest first, back to the last finished one."""
        log_ = webhook_logs.deliveries(self.store, webhook_id)
        top: int | None = None
        while top is None or top > 0:
            page: list[Any] = list(log_.get(lte=top, desc=True, limit=PAGE))
            if not page:
                return
            for logged in page:
                delivery = self.store.get(WebhookDelivery, UUID(logged.delivery_id))
                if delivery.kind != EVENT:
                    continue
                if delivery.finished:
                    return
                yield delivery.id
            top = page[-1].originator_version - 1


def _forgetting(recording: set[UUID], key: UUID) -> Callable[[object], None]:
    """A done callback that drops ``key`` from ``recording`` (the future itself is not read)."""
    return lambda _: recording.discard(key)


def _pop(lane: Lane, key: UUID) -> None:
    if lane.queue and lane.queue[0] == key:
        lane.queue.popleft()
