"""Stored topics of classes that have moved or been renamed since events of theirs were stored.

A stored event names its class by topic (``module:Qualname``) for as long as the log exists
(docs/events.md, "Names"). Registering the old topic of a moved aggregate makes its events, and
its events' nested classes, resolve to where the class lives now. ``application.ledger`` calls
``register`` before anything is read.
"""

from __future__ import annotations

from eventsourcing.utils import register_topic

from domain.webhook_delivery import WebhookDelivery

MOVED: dict[str, type] = {
    "domain.webhook:WebhookDelivery": WebhookDelivery,
}


def register() -> None:
    for topic, cls in MOVED.items():
        register_topic(topic, cls)
