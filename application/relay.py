"""The relay: follows the log by position and publishes its public events to the bus.

At least once: it reads a batch after its tracked position, publishes the batch, and only then
records the last position it looked at. A crash between the two publishes the batch again, and the
bus drops what it already has (JetStream by ``Nats-Msg-Id``, the in-process bus by position).
Batches with nothing public in them (webhook deliveries, claims, users) are recorded at most once
a second, and when the relay has caught up or stops: a crash only makes it scan them again.

Where to start: the tracked position, or the bus's last stored position when that is further on
(a bus that offers ``last_position()``, as both of ours do). Everything up to that is stored, in
order, so the relay does not lean on JetStream's duplicate window after a long outage.

It runs as a task on the event loop, reading the store in a worker thread. The committer wakes
it after each commit of this process (``poke``); otherwise it polls, so it follows commits made by
other processes too. While the store or the bus fails it retries the same batch with a backoff
doubling up to ``max_backoff`` seconds.

No single event stops it (docs/operations.md, "Quarantine"): each stored event is converted on
its own (``scan``), and one that cannot be converted, or that the bus refuses while it answers,
is retried with the batch a bounded number of times (the events before it are published), then
quarantined (``application/relay_poison.py``) and passed over; the rest of the batch goes on. A
retry request publishes that event late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from application.consumer_state import ConsumerState, Policy
from application.handed import Handed
from application.ports import Bus, Clock
from application.public_events import EventSource, Scan, scan, scan_handed
from application.quarantine import QuarantineService
from application.relay_poison import EventFailedError, Poisoning
from application.retry_requests import RetryRequests

if TYPE_CHECKING:
    from eventsourcing.persistence import Recording

log = logging.getLogger("taskwarden.relay")
RECORD_EVERY = 1.0  # seconds between position records while only private events pass


class Tracking(Protocol):
    """Named positions in the store (``tw_relay``): the relay's, and the in-process bus's
    durable consumers'. A position never moves backwards."""

    def get(self, name: str) -> int | None: ...

    def set(self, name: str, position: int) -> None: ...

    def close(self) -> None: ...


class MemoryTracking:
    """Tracking in this process (unit tests)."""

    def __init__(self) -> None:
        self.positions: dict[str, int] = {}

    def get(self, name: str) -> int | None:
        return self.positions.get(name)

    def set(self, name: str, position: int) -> None:
        self.positions[name] = max(position, self.positions.get(name, 0))

    def close(self) -> None:
        """Nothing to close."""


class Relay:
    def __init__(
        self,
        source: EventSource,
        bus: Bus,
        tracking: Tracking,
        batch: int = 500,
        *,
        clock: Clock,
        name: str = "relay",
        poll_interval: float = 0.1,
        max_backoff: float = 5.0,
        state: ConsumerState | None = None,
        quarantine: QuarantineService | None = None,
        retries: RetryRequests | None = None,
    ) -> None:
        self._source = source  # the Store
        self._bus = bus
        self._tracking = tracking
        self._batch = batch
        self._name = name
        self._poll = poll_interval
        self._position: int | None = None
        self._recorded = 0  # the position last written to the tracking table
        self._clock = clock
        self._recorded_at = -math.inf  # when (the clock's monotonic reading; never yet)
        self._resync = True
        self._head = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        policy = Policy(backoff=poll_interval, max_backoff=max_backoff)
        self.state = state or ConsumerState(name, policy, clock=clock)
        self.poisoning = Poisoning(self, quarantine, retries)
        self.published = 0  # events published by this relay since it started
        self._handed = Handed(batch * 10)  # this process's commits (``hand``)

    # ---- what it reports ----------------------------------------------------------------

    @property
    def position(self) -> int:
        """The last position recorded (0 before the relay has read its tracking)."""
        return self._position or 0

    @property
    def lag(self) -> int:
        """Positions in the log not yet relayed, as far as this relay knows the head."""
        return max(0, self._head - self.position)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def error(self) -> str | None:
        """The last failure, until the next batch succeeds."""
        return self.state.last_error

    def status(self) -> dict[str, object]:
        return {
            "running": self.running,
            "position": self.position,
            "lag": self.lag,
            "error": self.error,
        }

    # ---- running --------------------------------------------------------------------------

    def start(self) -> None:
        """On the event loop that will run it (the app's lifespan, or ``taskwarden relay``)."""
        if self.running:
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = False
        self.state.running = True
        self._task = self._loop.create_task(self.run(), name="relay")

    async def stop(self, grace: float = 2.0) -> None:
        """Lets the current batch finish for ``grace`` seconds, then cancels it: at worst that
        batch is published again by the next run."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self.state.running = False
        if self._wake is not None:
            self._wake.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await asyncio.shield(task)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(Exception):  # best effort: a later start scans it again
            await self._record()

    def poke(self, position: int) -> None:
        """Wake up now: the log has reached ``position``. Safe from any thread."""
        self._head = max(self._head, position)
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or position <= self.position:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to wake
            loop.call_soon_threadsafe(wake.set)

    def hand(self, recordings: Sequence[Recording[Any]]) -> None:
        """A commit of this process (``Store.on_recorded``), its events as committed: the next
        step converts them as they are when they follow on from the relay's position, instead of
        reading them back from the store in a worker thread (``application/handed.py``). Safe
        from any thread."""
        if recordings:
            self._handed.add(recordings)
            self.poke(recordings[-1].notification.id)

    async def run(self) -> None:
        while not self._stopping:
            try:
                full = await self.step()
            except EventFailedError as failed:
                await self.poisoning.failed(failed)
                continue
            except Exception as error:  # noqa: BLE001 - the relay outlives a failing store or bus
                if self.error is None:
                    log.warning("relay failed at position %d: %r", self.position, error)
                self.state.failed(None, error, answers=False)
                await self.state.pause(lambda: self._stopping)
                self._resync = True  # the bus may have stored more than was recorded
                continue
            if self.error is not None:
                log.info("relay recovered at position %d", self.position)
            self.state.succeeded()
            if not full and self.poisoning.retries_due():
                await self.poisoning.settle_retries()
            if not full:
                if self.position > self._recorded and (
                    self._clock.monotonic() - self._recorded_at >= RECORD_EVERY
                ):
                    await self._record()
                await self._pause(self._poll, wake=True)

    async def step(self) -> bool:
        """Relays one batch; True when it was full (more is probably waiting)."""
        if self._resync:
            await self._resume()
        after = self.position
        handed = self._handed.after(after, self._batch)
        if handed is not None:
            found = scan_handed(handed, after)
            head = found.last
        else:
            found, head = await asyncio.to_thread(self._scan, after)
        self._head = max(self._head, head, found.last)
        events, last = found.before_failure()
        if events:
            last = await self.poisoning.publish(events, last)
        await self.advance(last, len(events))
        if found.failures:
            raise EventFailedError.unconverted(found.failures[0])
        return found.last - after >= self._batch

    async def advance(self, last: int, published: int) -> None:
        """Everything up to ``last`` is published (or passed over)."""
        if last > self.position:
            self._position = last
            self.published += published
            self.state.passed(last)
            if published or self._clock.monotonic() - self._recorded_at >= RECORD_EVERY:
                await self._record()

    async def _record(self) -> None:
        """Writes the position to the tracking table. A batch with nothing public (webhook
        deliveries, claims) is recorded at most every ``RECORD_EVERY`` seconds, and when the
        relay catches up or stops: after a crash the relay only scans it again."""
        position = self.position
        if position > self._recorded:
            await asyncio.to_thread(self._tracking.set, self._name, position)
            self._recorded = position
        self._recorded_at = self._clock.monotonic()

    async def catch_up(self) -> int:
        """Relays everything there is now; returns the position (tests, tools)."""
        while await self.step():
            pass
        await self._record()
        return self.position

    # ---- inside ---------------------------------------------------------------------------

    async def _resume(self) -> None:
        tracked = await asyncio.to_thread(self._tracking.get, self._name) or 0
        tracked = max(tracked, self.position)
        stored = await _last_stored(self._bus)
        if stored is not None and stored > tracked:
            log.info("relay skips to %d, stored on the bus (tracked %d)", stored, tracked)
            await asyncio.to_thread(self._tracking.set, self._name, stored)
            tracked = stored
        self._position = self._recorded = tracked
        self.state.passed(tracked)
        self._resync = False

    def _scan(self, after: int) -> tuple[Scan, int]:
        found = scan(self._source, after, self._batch)
        head = self._source.max_position() if found.last - after >= self._batch else found.last
        return found, head

    async def _pause(self, seconds: float, *, wake: bool) -> None:
        """Sleeps ``seconds``; a commit (``poke``) ends it early when ``wake``, a stop always."""
        event = self._wake
        if event is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while not self._stopping:
                    await event.wait()
                    event.clear()
                    if wake:
                        return


async def _last_stored(bus: Any) -> int | None:
    """The bus's last stored position, when it can tell (not part of the Bus port)."""
    last_position = getattr(bus, "last_position", None)
    return None if last_position is None else await last_position()
