"""Handlers for webhooks: create (the secret shown once), read, list, change, delete, rotate the
secret, list a webhook's deliveries. Sending (test pings, redeliveries, the queue) lives in
``application/webhooks/attempts.py`` and ``application/webhooks/dispatch.py``.

A webhook belongs to a team; another team's id answers 404 WEBHOOK_NOT_FOUND like a missing one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

from application.commands import Command, Targeted, given
from application.errors import NotFoundError
from application.public_events import PUBLISHED
from application.results import Changed, Created, Deleted
from application.store import Store, check_version
from application.webhooks import logs as webhook_logs
from application.webhooks.signing import new_secret
from domain.errors import RuleViolationError
from domain.values import Actor, rfc3339
from domain.webhook import Webhook, check_patterns
from domain.webhook_delivery import WebhookDelivery
from domain.webhook_url import Network, check_url

Pattern = Annotated[str, Meta(min_length=1, max_length=100)]
Patterns = Annotated[list[Pattern], Meta(min_length=1, max_length=50)]
WebhookUrl = Annotated[str, Meta(min_length=1, max_length=2_000)]
Description = Annotated[str, Meta(max_length=500)]
# kinds of events a filter may name: what is published, and seed 000's system events
KINDS = frozenset({*PUBLISHED.values(), "system"})


class CreateWebhook(Command, frozen=True):
    url: WebhookUrl
    events: Patterns = msgspec.field(default_factory=lambda: ["*"])
    description: Description = ""
    enabled: bool = True


class UpdateWebhook(Command, frozen=True):
    """PATCH: only the given fields change; ``enabled: true`` resumes a disabled webhook."""

    url: WebhookUrl | UnsetType = UNSET
    events: Patterns | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class DeleteWebhook(Command, frozen=True):
    """Send nothing more to a webhook (no body)."""


class RotateWebhookSecret(Command, frozen=True):
    """A new signing secret; the previous one signs too for 24 h (no body)."""


def webhook_data(webhook: Webhook, now: datetime) -> dict[str, Any]:
    """Never the secret: only the answers of create and rotate carry it. ``now`` tells whether
    the previous secret still signs."""
    expires = webhook.previous_expires_at
    return {
        "id": str(webhook.id),
        "url": webhook.url,
        "events": list(webhook.events),
        "description": webhook.description,
        "enabled": webhook.enabled,
        "disabled_reason": webhook.disabled_reason,
        "failing_since": rfc3339(webhook.failing_since),
        "previous_secret_expires_at": rfc3339(expires) if expires and expires > now else None,
        "created_by": webhook.created_by,
        "created_at": rfc3339(webhook.created_on),
        "updated_at": rfc3339(webhook.modified_on),
        "version": webhook.version,
    }


def attempt_data(attempt: dict[str, Any]) -> dict[str, Any]:
    return {
        "number": attempt["number"],
        "at": rfc3339(attempt["at"]),
        "status": attempt["status"],
        "response_code": attempt["response_code"],
        "duration": attempt["duration"],
        "error": attempt["error"],
        "next_attempt_at": rfc3339(attempt["next_attempt_at"]),
        "manual": not attempt["automatic"],
    }


def delivery_data(delivery: WebhookDelivery) -> dict[str, Any]:
    last = delivery.attempts[-1] if delivery.attempts else None
    return {
        "id": str(delivery.id),
        "webhook_id": delivery.webhook_id,
        "kind": delivery.kind,
        "event_type": delivery.event_type,
        "types": list(delivery.types),
        "position": delivery.position,
        "status": delivery.status,
        "attempts": len(delivery.attempts),
        "response_code": last["response_code"] if last else None,
        "duration": last["duration"] if last else None,
        "error": last["error"] if last else None,
        "last_attempt_at": rfc3339(last["at"]) if last else None,
        "next_attempt_at": rfc3339(delivery.next_attempt_at) if not delivery.finished else None,
        "created_at": rfc3339(delivery.created_on),
        "history": [attempt_data(a) for a in delivery.attempts],
    }


def load_webhook(store: Store, ref: str, team_id: str) -> Webhook:
    webhook = store.load_ref(Webhook, ref, team_id, "webhook")
    if webhook.deleted:
        raise NotFoundError("webhook", ref)
    return webhook


def load_delivery(store: Store, webhook: Webhook, ref: str) -> WebhookDelivery:
    delivery = store.load_ref(WebhookDelivery, ref, webhook.team_id, "webhook_delivery")
    if delivery.webhook_id != str(webhook.id):
        raise NotFoundError("webhook_delivery", ref)
    return delivery


def check_events(patterns: Sequence[str]) -> list[str]:
    checked = check_patterns(patterns)
    unknown = [p for p in checked if p != "*" and p.partition(".")[0] not in KINDS]
    if unknown:
        raise RuleViolationError(
            f"events name unknown kinds; known: {', '.join(sorted(KINDS))}",
            field="events",
            values=unknown,
        )
    return checked


def create_webhook(
    store: Store, cmd: CreateWebhook, by: Actor, allowed: Sequence[Network] = ()
) -> Created:
    """The result carries ``secret``, the only time it is shown."""
    url = check_url(cmd.url, allowed)
    events = check_events(cmd.events)

    def decide() -> Created:
        secret = new_secret()
        webhook = Webhook(
            team_id=by.team_id,
            url=url,
            events=events,
            description=cmd.description,
            enabled=cmd.enabled,
            secret=secret,
            starts_after=store.max_position(),
            actor=by.id,
            request_id=by.request_id,
        )
        listed = [
            log.trigger_event(webhook_id=str(webhook.id))
            for log in (
                webhook_logs.team_webhooks(store, by.team_id),
                webhook_logs.all_webhooks(store),
            )
        ]
        position = store.commit(webhook, logged=listed)
        data = {**webhook_data(webhook, store.clock.now()), "secret": secret}
        return Created(data=data, position=position)

    return store.with_retries(decide)


def list_webhooks(store: Store, team_id: str) -> dict[str, Any]:
    """The team's webhooks, newest first; never a secret."""
    logged = webhook_logs.team_webhooks(store, team_id).get(desc=True)
    webhooks = [store.load(Webhook, UUID(e.webhook_id), team_id, "webhook") for e in logged]
    now = store.clock.now()
    items = [webhook_data(w, now) for w in webhooks if not w.deleted]
    return {"items": items, "total": len(items)}


def get_webhook(store: Store, ref: str, team_id: str) -> dict[str, Any]:
    return webhook_data(load_webhook(store, ref, team_id), store.clock.now())


def update_webhook(
    store: Store, cmd: Targeted[UpdateWebhook], by: Actor, allowed: Sequence[Network] = ()
) -> Changed:
    fields = given(cmd.command)
    if "url" in fields:
        fields["url"] = check_url(fields["url"], allowed)
    if "events" in fields:
        fields["events"] = check_events(fields["events"])
    enabled = fields.pop("enabled", None)

    def decide() -> Changed:
        now = store.clock.now()
        webhook = load_webhook(store, cmd.target, by.team_id)
        check_version(webhook, cmd.expected_version)
        webhook.update(fields, by)
        if enabled is True:
            webhook.enable(by)
        elif enabled is False:
            webhook.disable("disabled by an administrator", now, by.id, by.request_id)
        position = store.commit(webhook)
        return Changed(data=webhook_data(webhook, now), position=position)

    return store.with_retries(decide)


def delete_webhook(store: Store, cmd: Targeted[DeleteWebhook], by: Actor) -> Deleted:
    """Nothing more is sent; deliveries still queued are dropped."""

    def decide() -> Deleted:
        webhook = load_webhook(store, cmd.target, by.team_id)
        webhook.delete(by)
        position = store.commit(webhook)
        data = {"webhook_id": str(webhook.id)}
        return Deleted(kind="webhook", data=data, position=position)

    return store.with_retries(decide)


def rotate_secret(store: Store, cmd: Targeted[RotateWebhookSecret], by: Actor) -> Changed:
    """A new secret, shown in this result only; the previous one signs too for 24 h."""

    def decide() -> Changed:
        moment = store.clock.now()
        webhook = load_webhook(store, cmd.target, by.team_id)
        secret = new_secret()
        webhook.rotate_secret(secret, moment, by)
        position = store.commit(webhook)
        data = {**webhook_data(webhook, moment), "secret": secret}
        return Changed(data=data, position=position)

    return store.with_retries(decide)


def list_deliveries(
    store: Store, ref: str, team_id: str, page: int = 1, page_size: int = 50
) -> dict[str, Any]:
    """The webhook's deliveries, newest first, a page at a time (a webhook's log numbers its
    deliveries 1, 2, 3, ... so a page is a range of it)."""
    webhook = load_webhook(store, ref, team_id)
    log = webhook_logs.deliveries(store, webhook.id)
    total = webhook_logs.count(log)
    top = max(0, total - (page - 1) * page_size)
    logged = log.get(gt=max(0, top - page_size), lte=top, desc=True) if top else iter(())
    items = [
        delivery_data(store.load(WebhookDelivery, UUID(e.delivery_id), team_id, "webhook_delivery"))
        for e in logged
    ]
    pages = math.ceil(total / page_size) if total else 0
    return {
        "items": items,
        "total": total,
        "page": page,
        "page_size": page_size,
        "pages": pages,
        "has_next": page < pages,
        "has_previous": page > 1,
    }
