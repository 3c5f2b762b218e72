"""Queueing: public events become webhook deliveries, in one transaction per batch.

For each event, the team's webhooks that are enabled, were created before it, and subscribe to
one of its names (``seed_types``) get a ``WebhookDelivery`` whose id is derived from the webhook
and the event's position, logged on the webhook's delivery log. An event queued before (handed
over again after a restart) finds its deliveries there and queues nothing twice.

The bus hands events over one at a time, each after the one before was acknowledged; with
``read_ahead`` the events stored after the one handed over (up to ``LOOKAHEAD``) are queued with
it, in the same transaction, and the dispatcher acknowledges their hand-overs without work. The
read-ahead stops before a stored event it cannot convert: the bus hands that one over itself (or
never, when the relay quarantined it), so none is passed over here.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from application.public_events import PublicEvent, scan, seed_types
from application.store import Store
from application.webhooks import logs as webhook_logs
from application.webhooks.attempts import event_payload
from domain.webhook import Webhook
from domain.webhook_delivery import EVENT, WebhookDelivery, delivery_id

LOOKAHEAD = 200  # stored events after the one handed over, queued with it


class Queueing:
    def __init__(self, store: Store, *, read_ahead: bool) -> None:
        self.store = store
        self.read_ahead = read_ahead
        self._handled = 0  # the last position handed over in order
        self._ahead: set[int] = set()  # positions queued before their hand-over

    def take(self, event: PublicEvent, ahead: bool = True) -> list[tuple[UUID, UUID]]:
        """Queues a handed-over event, reading ahead unless ``ahead`` is False; nothing if it was
        read ahead already. One behind the last handed over (a released quarantine the relay
        published late) is queued alone. Returns the new deliveries (webhook, delivery)."""
        if event.position in self._ahead:
            self._ahead = {p for p in self._ahead if p > event.position}
            return []
        late = event.position < self._handled
        queued, later = self.queue(event, ahead=ahead and not late)
        if not late:
            self._handled = event.position
            self._ahead = {p for p in self._ahead if p > event.position} | set(later)
        return queued

    def queue(
        self, event: PublicEvent, *, ahead: bool = True
    ) -> tuple[list[tuple[UUID, UUID]], list[int]]:
        """Queues ``event`` (and, reading ahead, the public events stored after it); returns the
        new deliveries (webhook, delivery) in order and the positions read ahead."""
        events = [event]
        if self.read_ahead and ahead:
            found = scan(self.store, event.position, LOOKAHEAD)
            events += found.before_failure()[0]
        queued = self.store.with_retries(lambda: self._queue(events))
        return queued, [e.position for e in events[1:]]

    def _queue(self, events: list[PublicEvent]) -> list[tuple[UUID, UUID]]:
        """One transaction: a delivery per event and webhook that wants it and has none yet."""
        new: list[WebhookDelivery] = []
        logs = _DeliveryLogs(self.store)
        teams: dict[str, list[Webhook]] = {}
        for event in events:
            if event.team_id not in teams:
                listed = webhook_logs.team_webhooks(self.store, event.team_id).get()
                found = (self.store.find(Webhook, UUID(w.webhook_id)) for w in listed)
                teams[event.team_id] = [webhook for webhook in found if webhook is not None]
            names = seed_types(event)
            for webhook in teams[event.team_id]:
                types = webhook.wants(event.position, names)
                token = f"position:{event.position}"
                key = delivery_id(webhook.id, token)
                if not types or self.store.find(WebhookDelivery, key) is not None:
                    continue
                payload = event_payload(event, str(webhook.id), key, types)
                new.append(
                    WebhookDelivery(
                        team_id=event.team_id,
                        webhook_id=str(webhook.id),
                        key=token,
                        kind=EVENT,
                        position=event.position,
                        event_type=types[0],
                        types=types,
                        payload=payload,
                        next_attempt_at=self.store.clock.now(),
                    )
                )
                logs.add(webhook.id, key)
        if new:
            self.store.commit(*new, logged=logs.events)
        return [(UUID(d.webhook_id), d.id) for d in new]


class _DeliveryLogs:
    """The delivery-log entries of one transaction, numbered on from each log's last one."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._next: dict[UUID, tuple[Any, int]] = {}
        self.events: list[Any] = []

    def add(self, webhook_id: UUID, key: UUID) -> None:
        if webhook_id not in self._next:
            log_ = webhook_logs.deliveries(self._store, webhook_id)
            last = log_.get_last()
            self._next[webhook_id] = (log_, 1 if last is None else last.originator_version + 1)
        log_, version = self._next[webhook_id]
        self._next[webhook_id] = (log_, version + 1)
        entry = log_.trigger_event(next_originator_version=version, delivery_id=str(key))
        self.events.append(entry)
