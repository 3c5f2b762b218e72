"""The Bus port over NATS JetStream: one stream (``TASKWARDEN``, subjects ``taskwarden.>``).

- Connection: opened on first use in the background and kept: nats-py reconnects forever. Every
  use first makes sure the stream exists (created, or updated to the configured limits).
- ``publish``: one JetStream publish per event with ``Nats-Msg-Id: <position>``, sent without
  waiting (pipelined), then every acknowledgement awaited. Within a batch each message also
  carries ``Nats-Expected-Last-Msg-Id: <the previous position>``: if a message is lost when the
  connection drops, the ones after it are refused rather than stored out of order; the relay
  publishes the batch again and the stream drops what it already has (duplicate window).
- ``live``: an ordered push consumer (ephemeral, in memory, flow-controlled, DeliverPolicy.NEW),
  created as ``live()`` is called. Chosen over a core NATS subscription: it reads the stream, so
  a republished event is not seen twice and order is the stream's; and after a reconnect or a
  server restart it resumes at the next stream sequence instead of silently losing what was sent
  meanwhile. The price is one small consumer on the server per subscription.
- ``durable``: a durable pull consumer (explicit ack, ``ack_wait``, unlimited redelivery,
  ``max_ack_pending=1`` so a consumer's deliveries stay in order, DeliverPolicy.ALL: a new one
  starts at the oldest event the stream keeps). It lives on the server: it survives restarts of
  this process and of the server (file storage), and processes sharing a name share its work.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    StorageType,
    StreamConfig,
)

from application.public_events import PublicEvent, subject
from infrastructure.bus_subjects import SlowSubscriberError, check_filter

log = logging.getLogger("taskwarden.nats")
MSG_ID = "Nats-Msg-Id"
EXPECTED_LAST_MSG_ID = "Nats-Expected-Last-Msg-Id"
HEADROOM = 1024  # for the headers of a message, within the server's max_payload
STREAM_IN_USE = 10058  # JetStream: stream name already in use with a different configuration
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(PublicEvent).decode


class BusUnavailableError(Exception):
    """NATS is unreachable, or did not store a batch in time: publish it again later."""


class NatsDelivery:
    def __init__(self, msg: Msg, event: PublicEvent) -> None:
        self._msg = msg
        self._event = event

    @property
    def event(self) -> PublicEvent:
        return self._event

    @property
    def attempt(self) -> int:
        """1 on the first delivery, then counts redeliveries."""
        return int(self._msg.metadata.num_delivered or 1)

    async def ack(self) -> None:
        if not self._msg.is_acked:
            await self._msg.ack()


class NatsBus:
    def __init__(
        self,
        url: str,
        stream: str = "TASKWARDEN",
        *,
        prefix: str = "taskwarden",
        max_age: float = 7 * 24 * 3600.0,
        max_bytes: int = -1,
        duplicate_window: float = 120.0,
        storage: StorageType = StorageType.FILE,
        ack_wait: float = 30.0,
        publish_timeout: float = 10.0,
        reconnect_wait: float = 2.0,
        heartbeat: float = 2.0,
        live_queue: int = 10_000,
    ) -> None:
        self.url = url
        self.stream = stream
        self.prefix = prefix
        self._config = StreamConfig(
            name=stream,
            subjects=[f"{prefix}.>"],
            storage=storage,
            max_age=max_age,
            max_bytes=max_bytes,
            discard=DiscardPolicy.OLD,
            duplicate_window=duplicate_window,
        )
        self._ack_wait = ack_wait
        self._timeout = publish_timeout
        self._reconnect_wait = reconnect_wait
        self._heartbeat = heartbeat
        self._live_queue = live_queue
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._connecting: asyncio.Task[Client] | None = None
        self._stream_ready = False
        self._stream_lock: asyncio.Lock | None = None
        self._live: dict[int, NatsLive] = {}
        self._closed = False

    # ---- connection and stream ----------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def _client(self, timeout: float | None) -> Client:
        if self._closed:
            raise BusUnavailableError("the bus is closed")
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_task(self._connect())
        connecting = self._connecting
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(connecting)
        except asyncio.CancelledError:
            if connecting.cancelled():  # the bus was closed while connecting
                raise BusUnavailableError("the bus is closed") from None
            raise
        except TimeoutError:
            raise BusUnavailableError(f"no NATS server answers at {self.url}") from None
        except (OSError, nats.errors.Error) as error:  # refused for good (auth, bad URL)
            self._connecting = None  # the next use tries again
            raise BusUnavailableError(f"cannot connect to NATS at {self.url}: {error!r}") from error

    async def _connect(self) -> Client:
        """Returns once connected; until then nats-py keeps trying every ``reconnect_wait``."""
        self._nc = await nats.connect(
            [server.strip() for server in self.url.split(",") if server.strip()],
            name="taskwarden",
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=self._reconnect_wait,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )
        self._js = self._nc.jetstream(timeout=self._timeout)
        log.info("connected to NATS at %s", self.url)
        return self._nc

    async def _jetstream(self, timeout: float | None) -> JetStreamContext:
        await self._client(timeout)
        assert self._js is not None
        if not self._stream_ready:
            self._stream_lock = self._stream_lock or asyncio.Lock()
            async with self._stream_lock:
                if not self._stream_ready:
                    await self._ensure_stream(self._js)
        return self._js

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        """Creates the stream, or brings an existing one to the configured limits (its storage,
        replicas and the rest stay as they are: an operator may have made it)."""
        try:
            await js.add_stream(self._config)
        except nats.js.errors.BadRequestError as error:
            if error.err_code != STREAM_IN_USE:
                raise
            current = (await js.stream_info(self.stream)).config
            wanted = dataclasses.replace(
                current,
                max_age=self._config.max_age,
                max_bytes=self._config.max_bytes,
                duplicate_window=self._config.duplicate_window,
            )
            if wanted != current:
                await js.update_stream(wanted)
        self._stream_ready = True

    async def _on_error(self, error: Exception) -> None:
        if isinstance(error, nats.errors.SlowConsumerError):
            live = self._live.get(error.sid)
            if live is not None:
                live.drop()
            return
        log.debug("NATS: %r", error)

    async def _on_disconnected(self) -> None:
        if not self._closed:
            log.warning("disconnected from NATS at %s; reconnecting", self.url)

    async def _on_reconnected(self) -> None:
        log.info("reconnected to NATS at %s", self.url)

    # ---- publishing ---------------------------------------------------------------------

    async def publish(self, events: Sequence[PublicEvent]) -> None:
        if not events:
            return
        js = await self._jetstream(self._timeout)
        if not self.connected:
            raise BusUnavailableError(f"NATS at {self.url} is reconnecting")
        futures: list[asyncio.Future[Any]] = []
        try:
            previous: int | None = None
            for event in events:
                headers = {MSG_ID: str(event.position)}
                if previous is not None:
                    headers[EXPECTED_LAST_MSG_ID] = str(previous)
                future = await js.publish_async(
                    subject(event, self.prefix), self._payload(event), stream=self.stream,
                    headers=headers,
                )  # fmt: skip
                futures.append(future)
                previous = event.position
            async with asyncio.timeout(self._timeout):
                await asyncio.gather(*futures)
        except (nats.errors.Error, TimeoutError) as error:
            if isinstance(error, nats.js.errors.NoStreamResponseError):
                self._stream_ready = False  # the server lost the stream: create it again
            raise BusUnavailableError(f"NATS did not store the batch: {error!r}") from error
        finally:
            for future in futures:
                future.cancel()  # a no-op on those done

    def _payload(self, event: PublicEvent) -> bytes:
        """The event as JSON; one larger than the server accepts goes out with ``data`` replaced
        by ``{"truncated": true}`` (the store has it whole, by position) rather than blocking the
        relay forever."""
        payload = _encode(event)
        limit = (self._nc.max_payload if self._nc else 0) - HEADROOM
        if 0 < limit < len(payload):
            log.warning(
                "event %d is %d bytes: published without its data", event.position, len(payload)
            )
            payload = _encode(msgspec.structs.replace(event, data={"truncated": True}))
        return payload

    async def last_position(self) -> int | None:
        """The position in the stream's last message (everything before it is stored too)."""
        js = await self._jetstream(self._timeout)
        info = await js.stream_info(self.stream)
        if not info.state.messages:
            return None
        try:
            message = await js.get_msg(self.stream, seq=info.state.last_seq)
        except nats.js.errors.NotFoundError:
            return None
        found = (message.headers or {}).get(MSG_ID)
        return int(found) if found else None

    # ---- live and durable ---------------------------------------------------------------

    def live(self, subject_filter: str) -> NatsLive:
        return NatsLive(self, check_filter(subject_filter))

    async def _live_subscription(self, live: NatsLive) -> JetStreamContext.PushSubscription:
        js = await self._jetstream(None)
        sub = await js.subscribe(
            live.subject_filter,
            stream=self.stream,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
            idle_heartbeat=self._heartbeat,
            pending_msgs_limit=self._live_queue,
        )
        self._live[sub._id] = live
        return sub

    def durable(self, name: str, subject_filter: str) -> AsyncIterator[NatsDelivery]:
        return self._consume(name, check_filter(subject_filter))

    async def _consume(self, name: str, subject_filter: str) -> AsyncIterator[NatsDelivery]:
        sub: JetStreamContext.PullSubscription | None = None
        backoff = 0.1
        try:
            while not self._closed:
                try:
                    if sub is None:
                        sub = await self._pull(name, subject_filter)
                    msgs = await sub.fetch(1, timeout=5.0)
                except (nats.errors.Error, BusUnavailableError, TimeoutError) as error:
                    if isinstance(error, TimeoutError) and sub is not None:
                        continue  # nothing yet (or reconnecting: the request is sent again)
                    if self._closed:
                        return
                    log.warning("durable consumer %s: %r; retrying in %.1fs", name, error, backoff)
                    await _unsubscribed(sub)
                    sub = None
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.1
                for msg in msgs:
                    event = await _event_of(msg, terminate=True)
                    if event is not None:
                        yield NatsDelivery(msg, event)
        finally:
            await _unsubscribed(sub)

    async def _pull(self, name: str, subject_filter: str) -> JetStreamContext.PullSubscription:
        js = await self._jetstream(None)
        try:
            info = await js.consumer_info(self.stream, name)
        except nats.js.errors.NotFoundError:
            config = ConsumerConfig(
                durable_name=name,
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self._ack_wait,
                max_deliver=-1,
                max_ack_pending=1,
                filter_subject=subject_filter,
            )
            info = await js.add_consumer(self.stream, config)
        if info.config.filter_subject != subject_filter:
            raise ValueError(
                f"durable consumer {name!r} follows {info.config.filter_subject!r}, not "
                f"{subject_filter!r}: a new filter needs a new name"
            )
        return await js.pull_subscribe_bind(durable=name, stream=self.stream)

    # ---- the rest -----------------------------------------------------------------------

    async def health(self) -> dict[str, object]:
        """Healthy when connected and the stream answers within 2 s."""
        if not self.connected:
            with contextlib.suppress(BusUnavailableError):
                await self._client(0)  # starts connecting if nothing did yet
            if not self.connected:
                return {"status": "unhealthy", "kind": "nats", "error": "disconnected"}
        try:
            async with asyncio.timeout(2.0):
                js = await self._jetstream(2.0)
                info = await js.stream_info(self.stream)
        except (nats.errors.Error, BusUnavailableError, TimeoutError) as error:
            return {"status": "unhealthy", "kind": "nats", "error": type(error).__name__}
        state = info.state
        return {
            "status": "healthy",
            "kind": "nats",
            "stream": self.stream,
            "messages": state.messages,
            "last_sequence": state.last_seq,
        }

    async def close(self) -> None:
        self._closed = True
        for live in list(self._live.values()):
            live.drop(ended=True)
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()


class NatsLive:
    """One live subscription: an async iterator of ``PublicEvent``s. Its consumer is created as
    it is made (``await started()`` to know it exists); a subscriber that lets ``live_queue``
    messages pile up is dropped with ``SlowSubscriberError``."""

    def __init__(self, bus: NatsBus, subject_filter: str) -> None:
        self.subject_filter = subject_filter
        self._bus = bus
        self._sub: asyncio.Task[JetStreamContext.PushSubscription] | None = None
        self._dropped = False
        self._ended = False
        with contextlib.suppress(RuntimeError):  # no running loop: created on first use
            self._sub = asyncio.get_running_loop().create_task(bus._live_subscription(self))

    def drop(self, *, ended: bool = False) -> None:
        self._ended = self._ended or ended
        self._dropped = self._dropped or not ended

    async def started(self) -> None:
        await self._subscription()

    async def _subscription(self) -> JetStreamContext.PushSubscription:
        if self._sub is None:
            self._sub = asyncio.get_running_loop().create_task(self._bus._live_subscription(self))
        return await asyncio.shield(self._sub)

    def __aiter__(self) -> NatsLive:
        return self

    async def __anext__(self) -> PublicEvent:
        try:
            sub = await self._subscription()
        except BusUnavailableError:
            raise StopAsyncIteration from None  # closed before it was made
        while True:
            if self._ended:
                raise StopAsyncIteration
            try:
                async with asyncio.timeout(1.0):
                    msg = await sub.next_msg(timeout=None)
            except TimeoutError:
                if self._dropped:
                    raise SlowSubscriberError(f"live subscriber {self.subject_filter!r}") from None
                continue
            except nats.errors.ConnectionClosedError:
                raise StopAsyncIteration from None
            event = await _event_of(msg, terminate=False)
            if event is not None:
                return event

    async def aclose(self) -> None:
        self._ended = True
        if self._sub is None:
            return
        if not self._sub.done():
            self._sub.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            sub = await self._sub
            self._bus._live.pop(sub._id, None)
            await sub.unsubscribe()


async def _event_of(msg: Msg, *, terminate: bool) -> PublicEvent | None:
    """The event in a message; one that is not is logged, skipped (and, for a durable consumer,
    terminated: never redelivered)."""
    try:
        return _decode(msg.data)
    except msgspec.DecodeError:
        log.error("not a public event on %s; skipped", msg.subject)
        if terminate:
            with contextlib.suppress(nats.errors.Error):
                await msg.term()
        return None


async def _unsubscribed(sub: Any) -> None:
    if sub is not None:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
