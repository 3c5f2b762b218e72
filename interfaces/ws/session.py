"""One authenticated WebSocket: the client's messages, its subscriptions and its send queue.

Everything the socket sends goes through one bounded outbox, written by one task: answers and
events keep their order, and a client that stops reading is noticed. While the outbox is empty
and its writer waits, a message is sent at once on the sender's turn (``interfaces.ws.eager``): a
live event reaches a thousand sockets without a thousand task switches. A message that finds the
outbox full waits ``ws_send_grace`` seconds for room; if none comes, the socket is closed with 4008.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from application import executions, queues
from application.auth import authenticate
from application.commands import ExecuteTask, Targeted
from application.errors import AuthenticationError
from application.principal import Principal
from application.public_events import PublicEvent
from domain.project import Project
from domain.task import Task
from domain.values import Permission
from interfaces.http.errors import EXPECTED, describe
from interfaces.http.role import services_of
from interfaces.ws import eager
from interfaces.ws.feed import Feed, FeedEndedError, GapTooLargeError
from interfaces.ws.filter import Filter, Spec
from interfaces.ws.frames import Outgoing, frame_writer
from interfaces.ws.messages import (
    Auth,
    ClientMessage,
    ExecuteTaskMessage,
    GetMetrics,
    MessageError,
    Ping,
    Subscribe,
    Unsubscribe,
    decode,
    described,
    error,
    performance_data,
    reply,
    who,
)
from interfaces.ws.outbox import Outbox
from interfaces.ws.shared import Shared

log = logging.getLogger("taskwarden.ws")
_encoder = msgspec.json.Encoder()
ALL_METRICS = ("queue_status", "performance", "system_health")
MAX_SUBSCRIPTIONS = 100  # a socket's; each holds a live bus subscription


class Closing(Exception):
    """Ends the socket with this close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason.encode()[:120].decode(errors="ignore")  # a close frame's limit


def text_sender(websocket: WebSocket) -> Callable[[str], Any]:
    """``websocket.send_text`` with one dict and two calls less per message: a live event goes to
    every socket, so this is the gateway's hot path. While the socket is connected it hands the
    message to the ASGI send as Starlette would (an ``OSError`` is the client gone: 1006); in any
    other state Starlette's own ``send_text`` says why it refuses."""
    send = websocket._send  # noqa: SLF001 - the ASGI send Starlette wraps; its own state kept
    connected, gone = WebSocketState.CONNECTED, WebSocketState.DISCONNECTED

    async def send_text(text: str) -> None:
        if websocket.application_state is not connected:
            await websocket.send_text(text)
            return
        try:
            await send({"type": "websocket.send", "text": text})
        except OSError:
            websocket.application_state = gone
            raise WebSocketDisconnect(code=1006) from None

    return send_text


class Session:
    def __init__(
        self,
        websocket: WebSocket,
        principal: Principal,
        credential: str,
        shared: Shared,
    ) -> None:
        self.websocket = websocket
        self.principal = principal
        self.credential = credential
        self.shared = shared
        self.services = services_of(websocket)
        self.settings = websocket.app.state.settings
        self.outbox = Outbox(self.settings.ws_queue_size)
        self._send_text = text_sender(websocket)
        self._write_frame = frame_writer(websocket.scope)
        self.subscriptions: dict[str, asyncio.Task[None]] = {}
        self._group: asyncio.TaskGroup | None = None

    # ---- running -------------------------------------------------------------------------------

    async def serve(self, greeting: dict[str, Any]) -> None:
        """Runs until the client leaves (returns) or the socket must close (raises Closing)."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            await self.send(greeting)
            group.create_task(self._write())
            group.create_task(self._recheck_periodically())
            while True:
                raw = await receive(self.websocket)
                await self.handle(raw)

    async def send(self, message: dict[str, Any]) -> None:
        await self.send_text(_encoder.encode(message).decode())

    def send_now(self, text: str) -> bool:
        """Sends an encoded message at once if the writer is idle (see ``interfaces.ws.eager``),
        else queues it if there is room; False if the queue is full."""
        if not self.outbox.idle:
            return self.outbox.put_nowait(text)
        return self._start(text)

    def send_shared(self, message: Outgoing) -> bool:
        """``send_now`` for a message many sockets take: while the writer is idle, its frame
        (built once, interfaces/ws/frames.py) is written at once if the server can."""
        if not self.outbox.idle:
            return self.outbox.put_nowait(message.text)
        write = self._write_frame
        if write is not None and write(message.frame):
            return True
        return self._start(message.text)

    def _start(self, text: str) -> bool:
        try:
            rest = eager.start(self._send_text(text))
        except Exception as failure:  # noqa: BLE001 - the writer raises it and the socket ends
            self.outbox.fail(failure)
            return True
        if rest is not None:
            self.outbox.hand_over(rest)
        return True

    async def send_text(self, text: str) -> None:
        """Queues an encoded message, waiting ``ws_send_grace`` for room before closing 4008."""
        if self.send_now(text):
            return
        grace = self.settings.ws_send_grace
        if not await self.outbox.put(text, grace):
            size = len(self.outbox)
            reason = f"consumer too slow: {size} messages unsent for {grace:g} s; resume with since"
            raise Closing(4008, reason)

    async def _write(self) -> None:
        send, take = self._send_text, self.outbox.take
        while True:
            item = await take()
            if isinstance(item, str):
                await send(item)
            else:
                await eager.finish(item)

    async def _recheck_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.settings.ws_reauth_seconds)
            await self.recheck()

    async def recheck(self) -> None:
        """Authenticates the credential again: a disabled user or a revoked key loses the socket."""
        try:
            self.principal = await self.authenticate(self.credential)
        except AuthenticationError as failure:
            raise Closing(4401, f"{failure.code}: {failure}") from None
        if not self.principal.allows(Permission.READ):
            raise Closing(4403, f"role {self.principal.role} may not read")

    async def authenticate(self, credential: str) -> Principal:
        return await run_in_threadpool(
            authenticate, self.services.store, self.services.codec, credential
        )

    # ---- messages ------------------------------------------------------------------------------

    async def handle(self, raw: str | bytes) -> None:
        correlation = None
        try:
            message = decode(raw, self.settings.max_body_bytes)
            correlation = message.id
            await self._dispatch(message)
        except MessageError as failure:
            await self.send(error(failure.code, failure.message, correlation, **failure.details))
        except EXPECTED as failure:
            _, code, text, details = describe(failure)
            await self.send(error(code, text, correlation, **details))
        except (Closing, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("websocket message failed")
            await self.send(error("INTERNAL_ERROR", "an unexpected error occurred", correlation))

    async def _dispatch(self, message: ClientMessage) -> None:
        handlers: dict[type, Callable[[Any], Any]] = {
            Auth: self._auth,
            Subscribe: self._subscribe,
            Unsubscribe: self._unsubscribe,
            Ping: self._ping,
            ExecuteTaskMessage: self._execute,
            GetMetrics: self._metrics,
        }
        await handlers[type(message)](message)

    async def _auth(self, message: Auth) -> None:
        """A fresh token (a JWT is short-lived): rechecks use it from now on. It must be of the
        same team and project scope, for which the subscriptions were authorized."""
        fresh = await self.authenticate(message.token)
        mine = self.principal
        if (fresh.team_id, fresh.project_id) != (mine.team_id, mine.project_id):
            raise MessageError("AUTH_TOKEN_INVALID", "the token is for another team or project")
        if not fresh.allows(Permission.READ):
            raise MessageError("AUTH_INSUFFICIENT_PERMISSIONS", f"role {fresh.role} may not read")
        self.principal, self.credential = fresh, message.token
        await self.send(reply("authenticated", who(fresh), message.id))

    async def _ping(self, message: Ping) -> None:
        """Seed 000's keep-alive: the client's timestamp comes back (else now, in ms)."""
        stamp = message.timestamp if message.timestamp is not None else int(time.time() * 1000)
        pong: dict[str, Any] = {"type": "pong", "timestamp": stamp}
        if message.id is not None:
            pong["id"] = message.id
        await self.send(pong)

    async def _subscribe(self, message: Subscribe) -> None:
        await self.recheck()
        spec = await self._spec(message)
        head = await run_in_threadpool(self.services.store.max_position)
        oldest = max(0, head - self.settings.ws_max_replay)
        since = message.since
        if since is not None and not oldest <= since <= head:
            data = {**described(spec), "since": since, "oldest": oldest, "position": head}
            await self.send(reply("resync_required", data, message.id))
            return
        start = head if since is None else since
        self._cancel(spec.key)
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise MessageError("TOO_MANY_SUBSCRIPTIONS", f"at most {MAX_SUBSCRIPTIONS} a socket")
        data = {**described(spec), "since": start, "position": head}
        await self.send(reply("subscribed", data, message.id))
        if self._group is None:
            raise RuntimeError("subscribe before serve")
        self.subscriptions[spec.key] = self._group.create_task(self._follow(spec, start))

    async def _unsubscribe(self, message: Unsubscribe) -> None:
        spec = await self._spec(message)
        if not self._cancel(spec.key):
            raise MessageError("NOT_SUBSCRIBED", f"no subscription {spec.key}")
        await self.send(reply("unsubscribed", described(spec), message.id))

    def _cancel(self, key: str) -> bool:
        running = self.subscriptions.pop(key, None)
        if running is not None:
            running.cancel()
        return running is not None

    async def _spec(self, message: Subscribe | Unsubscribe) -> Spec:
        """The subscription, with ids resolved through the store: another team's project or task
        (or one outside a project-scoped key's project) is not found."""
        if message.task_id and message.project_id:
            raise MessageError("VALIDATION_ERROR", "name a task_id or a project_id, not both")
        if message.channel == "project_updates" and not message.project_id:
            raise MessageError("VALIDATION_REQUIRED_FIELD", "project_updates needs a project_id")
        if message.channel == "task_updates" and not (message.task_id or message.project_id):
            raise MessageError("VALIDATION_REQUIRED_FIELD", "task_updates needs a task_id")
        team, store = self.principal.team_id, self.services.store
        task_id = project_id = None
        if message.task_id:
            task = await run_in_threadpool(store.load_live, Task, message.task_id, team, "task")
            task_id = str(task.id)
        if message.project_id:
            project = await run_in_threadpool(
                store.load_live, Project, message.project_id, team, "project"
            )
            project_id = str(project.id)
        return Spec(channel=message.channel, task_id=task_id, project_id=project_id)

    async def _follow(self, spec: Spec, start: int) -> None:
        events = Filter(spec, self.principal.team_id, self.principal.project_id)
        feed = Feed(
            self.shared.hub,
            self.services.bus,
            self.services.store,
            self.principal.team_id,
            self.settings.ws_queue_size,
            self.settings.ws_max_replay,
            self.shared.guard,
        )

        async def offer(event: PublicEvent) -> None:
            async def message() -> str | None:  # the guard skips an event that cannot be sent
                place = events.place(event)
                return None if place is None else self.shared.message(event, spec.key, place).text

            text = await self.shared.guard.message(event, message)
            if text is not None:
                await self.send_text(text)

        def offer_now(event: PublicEvent) -> bool:
            message = self.shared.outcome(event, events)
            return message is None or self.send_shared(message)

        try:
            await feed.run(start, offer, offer_now)
        except FeedEndedError:
            raise Closing(1012, "the event bus stopped; reconnect and resume with since") from None
        except GapTooLargeError as gap:  # the bus missed more than a resume may replay
            if self.subscriptions.get(spec.key) is asyncio.current_task():
                del self.subscriptions[spec.key]
            oldest = max(0, gap.position - self.settings.ws_max_replay)
            data = {**described(spec), "since": gap.last, "oldest": oldest}
            await self.send(reply("resync_required", {**data, "position": gap.position}))

    async def _execute(self, message: ExecuteTaskMessage) -> None:
        self.principal.require(Permission.OPERATE)
        command = ExecuteTask(priority=message.priority, options=message.options)
        by = self.principal.actor(self.websocket.state.request_id)
        targeted = Targeted(target=message.task_id, command=command)
        written = await run_in_threadpool(
            functools.partial(executions.request_execution, spending=self.services.read_model),
            self.services.store,
            targeted,
            by,
        )
        await self.send(reply("task_queued", written.data, message.id, position=written.position))

    async def _metrics(self, message: GetMetrics) -> None:
        self.principal.require(Permission.READ)
        wanted = message.metrics or ALL_METRICS
        services, team = self.services, self.principal.team_id
        status = await run_in_threadpool(
            queues.queue_status, services.read_model, services.store, team, self._idle_workers()
        )
        data = performance_data(status, self.shared.connections)
        if "queue_status" in wanted:
            data["queue_status"] = status
        if "performance" in wanted:
            data["performance"] = await run_in_threadpool(
                queues.queue_metrics, services.read_model, services.store, team, message.period
            )
        if "system_health" in wanted:
            head = await run_in_threadpool(services.store.max_position)
            data["system_health"] = {"position": head, "projections": services.runner.position}
        await self.send(reply("performance_data", data, message.id))

    def _idle_workers(self) -> int:
        host = getattr(self.websocket.app.state, "execution", None)
        return 0 if host is None else max(0, host.pool.size - host.pool.busy)


async def receive(websocket: WebSocket) -> str | bytes:
    """The next text or binary message; raises WebSocketDisconnect when the client leaves."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    return text if text is not None else message.get("bytes") or b""
