"""Event-sourced logs that find webhooks and deliveries without a projection.

- a team's webhooks (listing), and every team's (the sender, recovering its queues at start): a
  webhook is logged on both in the transaction that creates it;
- a webhook's deliveries, in the order they were queued: the listing reads it newest first, and
  the sender reads it from the end to find what is still pending (docs/api.md, "Webhooks").

Appending takes the log's next version, so two writers racing for one log conflict and the loser
retries (``Store.with_retries``).
"""

from __future__ import annotations

from uuid import UUID, uuid5

from eventsourcing.application import EventSourcedLog
from eventsourcing.domain import DomainEvent

from application.store import Store
from domain.claim import claim_id


class WebhookListed(DomainEvent):
    webhook_id: str


class DeliveryLogged(DomainEvent):
    delivery_id: str


def team_webhooks(store: Store, team_id: str) -> EventSourcedLog[WebhookListed]:
    return store.event_log(claim_id(team_id, "log", "webhooks"), WebhookListed)


def all_webhooks(store: Store) -> EventSourcedLog[WebhookListed]:
    """Every team's webhooks (the team id of a claim never holds a NUL character)."""
    return store.event_log(claim_id("\x00", "log", "webhooks"), WebhookListed)


def deliveries(store: Store, webhook_id: UUID | str) -> EventSourcedLog[DeliveryLogged]:
    key = uuid5(UUID(str(webhook_id)), "log:deliveries")
    return store.event_log(key, DeliveryLogged)


def count(log: EventSourcedLog[DeliveryLogged]) -> int:
    last = log.get_last()
    return 0 if last is None else last.originator_version
