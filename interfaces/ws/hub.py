"""One live bus subscription per team for all the WebSocket subscriptions of a process.

Each subscription used to hold a bus subscription of its own: a thousand sockets on one project
were a thousand NATS consumers, each event crossed the network a thousand times, and in the
embedded mode woke two tasks per socket before anything was sent. The hub listens once per team
and hands each event to every listener of that team synchronously, in order; a listener decides
at once (send it, or keep it for its feed's task). What the bus may have missed is still read from
the store by the feeds: the hub tells its listeners where events may be missing (the bus dropped
the subscription and the hub listens again) and when the bus ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

from application.ports import Bus
from application.public_events import PublicEvent, subject

log = logging.getLogger("taskwarden.ws")
STARTED_WAIT = 5.0  # seconds to wait for the bus to confirm it listens, else read what it missed
RELISTEN_LIMIT = 3  # the bus may drop a live subscription this often in a row before it fails


class Listener(Protocol):
    def deliver(self, event: PublicEvent) -> None:
        """The next live event of the team (the hub's task calls it; it must not block)."""

    def gap(self) -> None:
        """Events may be missing here: the bus dropped the subscription and it listens again."""

    def ended(self, failure: BaseException | None) -> None:
        """No more events: the bus was closed (None) or kept failing."""


def team_filter(team_id: str, prefix: str = "taskwarden") -> str:
    """The bus subject filter of a team's events (built by the one subject rule)."""
    probe = PublicEvent(
        position=0,
        type="x.y",
        team_id=team_id,
        aggregate="x",
        aggregate_id="",
        version=0,
        timestamp="",
        actor=None,
        data={},
    )
    return subject(probe, prefix).rsplit(".", 2)[0] + ".>"


class Attachment:
    """A listener's place in the hub: ``started()`` once the bus listens, ``detach()`` to leave."""

    def __init__(self, upstream: _Upstream, listener: Listener) -> None:
        self._upstream = upstream
        self._listener = listener

    async def started(self) -> bool:
        """True once the bus confirms it listens; False if it cannot tell (or not in time): then
        events published just before may be missing."""
        return await asyncio.shield(self._upstream.started)

    def detach(self) -> None:
        self._upstream.remove(self._listener)


class Hub:
    """The live subscriptions of one process, one per (bus, team), shared by its listeners."""

    def __init__(self) -> None:
        self._upstreams: dict[tuple[int, str], _Upstream] = {}

    def attach(self, bus: Bus, team_id: str, listener: Listener) -> Attachment:
        key = (id(bus), team_id)
        upstream = self._upstreams.get(key)
        if upstream is None or upstream.finished:
            upstream = _Upstream(bus, team_id, lambda: self._upstreams.pop(key, None))
            self._upstreams[key] = upstream
        upstream.add(listener)
        return Attachment(upstream, listener)

    @property
    def subscriptions(self) -> int:
        """Live bus subscriptions held (one per team with listeners)."""
        return len(self._upstreams)


class _Upstream:
    def __init__(self, bus: Bus, team_id: str, forget: Any) -> None:
        self._bus = bus
        self._filter = team_filter(team_id, getattr(bus, "prefix", "taskwarden"))
        self._forget = forget
        self._listeners: dict[int, Listener] = {}
        self.started: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.finished = False
        self._task = asyncio.create_task(self._run(), name=f"ws-hub {self._filter}")

    def add(self, listener: Listener) -> None:
        self._listeners[id(listener)] = listener

    def remove(self, listener: Listener) -> None:
        self._listeners.pop(id(listener), None)
        if not self._listeners and not self.finished:
            self._finish()
            self._task.cancel()

    def _finish(self) -> None:
        self.finished = True
        self._forget()
        if not self.started.done():
            self.started.set_result(False)

    async def _run(self) -> None:
        failures = 0
        first = True
        try:
            while True:
                live: Any = None
                try:
                    live = self._bus.live(self._filter)
                    if first:
                        confirmed = await _confirmed(live)
                        if not self.started.done():
                            self.started.set_result(confirmed)
                        first = False
                    async for event in live:
                        failures = 0
                        for listener in list(self._listeners.values()):
                            _hand(listener, event)
                    self._end(None)  # the bus was closed
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as failure:
                    failures += 1
                    if failures > RELISTEN_LIMIT:
                        self._end(failure)
                        return
                    log.warning("live subscription dropped; listening again", exc_info=True)
                    for listener in list(self._listeners.values()):
                        listener.gap()
                finally:
                    close = getattr(live, "aclose", None)
                    if close is not None:
                        with contextlib.suppress(Exception):
                            await close()
        finally:
            if not self.finished:  # stopped from outside (shutdown): the listeners must know
                self._end(None)

    def _end(self, failure: BaseException | None) -> None:
        self._finish()
        for listener in list(self._listeners.values()):
            listener.ended(failure)


def _hand(listener: Listener, event: PublicEvent) -> None:
    try:
        listener.deliver(event)
    except Exception:  # a listener's failure is its own: it reads what it missed from the store
        log.exception("a live listener failed to take an event")
        listener.gap()


async def _confirmed(live: AsyncIterator[Any]) -> bool:
    """True once the bus confirms it listens (``started()``, as both buses offer)."""
    started = getattr(live, "started", None)
    if started is None:
        return False
    try:
        async with asyncio.timeout(STARTED_WAIT):
            await started()
    except TimeoutError:
        return False
    return True
