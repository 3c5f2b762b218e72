"""One attempt at a delivery: sign, send through the ``WebhookSender`` port, record the outcome.

Shared by the queue (``application/webhooks/dispatch.py``), the test ping and manual redelivery.
The request is built from the stored delivery (its exact body) and the webhook's secrets at the
moment of sending; the outcome is recorded on the delivery and, for deliveries of events, on the
webhook (a failing streak, 410 Gone, five days of failures: ``Webhook.record_outcome``).

Every request goes through ``Attempts.post``: a sender that raises (the port says it never does,
but a URL nobody foresaw once made it) gives a failed attempt recorded with the error, retried
on the schedule like any other, instead of an exception that stops a lane or a test ping.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol
from uuid import UUID, uuid4

import msgspec

from application.public_events import PublicEvent
from application.store import Store
from application.webhooks import logs as webhook_logs
from application.webhooks.handlers import attempt_data, delivery_data, load_delivery, load_webhook
from application.webhooks.signing import signed_headers
from domain.values import Actor, rfc3339
from domain.webhook import Webhook
from domain.webhook_delivery import EVENT, RETRY_DELAYS, TEST, WebhookDelivery, delivery_id

log = logging.getLogger("taskwarden.webhooks")
ERROR_LENGTH = 500  # characters of an error kept with an attempt


class WebhookResponse(msgspec.Struct, frozen=True, kw_only=True):
    """What came of one request. ``status`` None: no answer (address refused, timeout,
    connection or TLS failure), with ``error`` saying which."""

    status: int | None
    duration: float
    error: str | None = None
    retry_after: float | None = None  # seconds, from the answer's Retry-After


class WebhookSender(Protocol):
    """POSTs one signed request; never raises for what the network or the receiver does."""

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> WebhookResponse: ...

    async def aclose(self) -> None:
        """Closes kept-alive connections (of the running event loop)."""


class Outbound(msgspec.Struct, frozen=True):
    url: str
    headers: dict[str, str]
    body: bytes


class Outcome(NamedTuple):
    """One attempt made, to be recorded: which delivery, when, and what came of it."""

    webhook_id: UUID
    key: UUID
    at: datetime
    response: WebhookResponse


def event_payload(event: PublicEvent, webhook_id: str, delivery: UUID, types: list[str]) -> str:
    """Seed 000's shape (``event``, ``timestamp``, ``data``, ``webhook_id``, ``delivery_id``)
    with Standard Webhooks' ``type``; ``types`` are every name of the event the webhook asked
    for (``task.execution_finished`` is also ``task.completed``)."""
    data = {**event.data, f"{event.aggregate}_id": event.aggregate_id}
    body = {
        "type": types[0],
        "event": types[0],
        "types": types,
        "timestamp": event.timestamp,
        "webhook_id": webhook_id,
        "delivery_id": str(delivery),
        "position": event.position,
        "team_id": event.team_id,
        "aggregate": event.aggregate,
        "aggregate_id": event.aggregate_id,
        "project_id": event.project_id,
        "task_id": event.task_id,
        "version": event.version,
        "actor": event.actor,
        "data": data,
    }
    return msgspec.json.encode(body).decode()


def ping_payload(webhook: Webhook, delivery: UUID, now: datetime) -> str:
    body = {
        "type": "webhook.test",
        "event": "webhook.test",
        "types": ["webhook.test"],
        "timestamp": rfc3339(now),
        "webhook_id": str(webhook.id),
        "delivery_id": str(delivery),
        "team_id": webhook.team_id,
        "data": {"message": "A test ping from Taskwarden", "url": webhook.url},
    }
    return msgspec.json.encode(body).decode()


class Attempts:
    """Sends deliveries through ``sender`` and records them in ``store``, on the store's clock
    (what it signs with, when an attempt was made, when the next one is due)."""

    def __init__(
        self,
        store: Store,
        sender: WebhookSender,
        *,
        jitter: Callable[[], float] = lambda: random.uniform(-1.0, 1.0),  # noqa: S311
        user_agent: str = "Taskwarden-Webhooks",
        schedule: Sequence[float] = RETRY_DELAYS,
    ) -> None:
        self.store = store
        self.sender = sender
        self.clock = store.clock
        self.jitter = jitter
        self.user_agent = user_agent
        self.schedule = tuple(schedule)  # seconds after each failure (tests shorten it)

    def outbound(
        self, webhook: Webhook, delivery: WebhookDelivery | UUID, payload: str, event_type: str
    ) -> Outbound:
        key = delivery if isinstance(delivery, UUID) else delivery.id
        body = payload.encode()
        now = self.clock.now()
        headers = signed_headers(
            webhook.signing_secrets(now),
            str(key),
            event_type,
            int(now.timestamp()),
            body,
            self.user_agent,
        )
        return Outbound(webhook.url, headers, body)

    async def post(self, request: Outbound) -> WebhookResponse:
        """Sends one request; whatever the sender raises becomes a failed response."""
        started = self.clock.monotonic()
        try:
            return await self.sender.send(request.url, request.headers, request.body)
        except Exception as error:
            log.exception("the webhook sender raised; the attempt is recorded as failed")
            return WebhookResponse(
                status=None,
                duration=self.clock.monotonic() - started,
                error=f"sender failed: {type(error).__name__}: {error}"[:ERROR_LENGTH],
            )

    # ---- the queue's attempt -------------------------------------------------------------

    async def attempt(self, webhook_id: UUID, key: UUID, retry: bool = True) -> WebhookDelivery:
        """Sends a stored delivery now and records the outcome (``retry``: schedule the next
        attempt on failure)."""
        request = await asyncio.to_thread(self._prepare, webhook_id, key)
        return await self.send(webhook_id, key, request, retry)

    async def send(
        self, webhook_id: UUID, key: UUID, request: Outbound, retry: bool = True
    ) -> WebhookDelivery:
        """Sends a request built from the stored delivery (``outbound``) and records it."""
        response = await self.post(request)
        return await asyncio.to_thread(self._record, webhook_id, key, response, retry)

    def _prepare(self, webhook_id: UUID, key: UUID) -> Outbound:
        webhook = self.store.get(Webhook, webhook_id)
        delivery = self.store.get(WebhookDelivery, key)
        return self.outbound(webhook, delivery, delivery.payload, delivery.event_type)

    def _record(
        self, webhook_id: UUID, key: UUID, response: WebhookResponse, retry: bool
    ) -> WebhookDelivery:
        outcome = Outcome(webhook_id, key, self.clock.now(), response)
        (delivery,) = self.record_many([outcome], retry)
        return delivery

    def record_many(self, outcomes: Sequence[Outcome], retry: bool = True) -> list[WebhookDelivery]:
        """Records attempts in one transaction, in order (each webhook's failing streak follows
        its outcomes); at most one outcome per delivery."""

        def decide() -> list[WebhookDelivery]:
            webhooks: dict[UUID, Webhook] = {}
            deliveries: list[WebhookDelivery] = []
            for outcome in outcomes:
                webhook = webhooks.get(outcome.webhook_id)
                if webhook is None:
                    webhook = self.store.get(Webhook, outcome.webhook_id)
                    webhooks[outcome.webhook_id] = webhook
                delivery = self.store.get(WebhookDelivery, outcome.key)
                self._apply(delivery, outcome.response, retry, outcome.at)
                if delivery.kind == EVENT:
                    attempt = delivery.attempts[-1]
                    succeeded = attempt["status"] == "succeeded"
                    webhook.record_outcome(outcome.response.status, succeeded, attempt["at"])
                deliveries.append(delivery)
            self.store.commit(*deliveries, *webhooks.values())
            return deliveries

        return self.store.with_retries(decide)

    def _apply(
        self,
        delivery: WebhookDelivery,
        response: WebhookResponse,
        retry: bool,
        at: datetime | None = None,
    ) -> None:
        delivery.record_attempt(
            at=at or self.clock.now(),
            response_code=response.status,
            duration=response.duration,
            error=response.error,
            retry_after=response.retry_after,
            jitter=self.jitter(),
            retry=retry,
            delays=self.schedule,
        )

    # ---- an administrator's requests -----------------------------------------------------

    async def ping(self, ref: str, by: Actor) -> dict[str, Any]:
        """A ``webhook.test`` delivery sent now, disabled webhook or not; recorded among the
        deliveries, never retried, and no part of the failing streak."""
        webhook = await asyncio.to_thread(load_webhook, self.store, ref, by.team_id)
        token = f"test:{uuid4()}"
        key = delivery_id(webhook.id, token)
        payload = ping_payload(webhook, key, self.clock.now())
        request = self.outbound(webhook, key, payload, "webhook.test")
        response = await self.post(request)
        delivery = await asyncio.to_thread(self._record_ping, webhook, token, payload, response)
        return {**delivery_data(delivery), "attempt": attempt_data(delivery.attempts[-1])}

    def _record_ping(
        self, webhook: Webhook, token: str, payload: str, response: WebhookResponse
    ) -> WebhookDelivery:
        def decide() -> WebhookDelivery:
            delivery = WebhookDelivery(
                team_id=webhook.team_id,
                webhook_id=str(webhook.id),
                key=token,
                kind=TEST,
                position=None,
                event_type="webhook.test",
                types=["webhook.test"],
                payload=payload,
                next_attempt_at=None,
            )
            self._apply(delivery, response, retry=False)
            logged = webhook_logs.deliveries(self.store, webhook.id).trigger_event(
                delivery_id=str(delivery.id)
            )
            self.store.commit(delivery, logged=[logged])
            return delivery

        return self.store.with_retries(decide)

    async def redeliver(self, webhook_ref: str, delivery_ref: str, by: Actor) -> dict[str, Any]:
        """A finished delivery is sent again now (the same id and body), once: the answer
        carries the attempt. A pending one is made due now and keeps its turn in the queue: the
        answer carries no attempt (``attempt`` null)."""
        webhook, delivery = await asyncio.to_thread(self._load, webhook_ref, delivery_ref, by)
        if not delivery.finished:
            rescheduled = await asyncio.to_thread(self._reschedule, delivery.id, by)
            return {**delivery_data(rescheduled), "attempt": None}
        request = self.outbound(webhook, delivery, delivery.payload, delivery.event_type)
        response = await self.post(request)
        done = await asyncio.to_thread(self._record, webhook.id, delivery.id, response, False)
        return {**delivery_data(done), "attempt": attempt_data(done.attempts[-1])}

    def _load(self, webhook_ref: str, delivery_ref: str, by: Actor) -> tuple[Webhook, Any]:
        webhook = load_webhook(self.store, webhook_ref, by.team_id)
        return webhook, load_delivery(self.store, webhook, delivery_ref)

    def _reschedule(self, key: UUID, by: Actor) -> WebhookDelivery:
        def decide() -> WebhookDelivery:
            delivery = self.store.get(WebhookDelivery, key)
            delivery.reschedule(self.clock.now(), by)
            self.store.commit(delivery)
            return delivery

        return self.store.with_retries(decide)
