"""Stored topics of classes that have moved or been renamed since events of theirs were stored.

A stored event names its class by topic (``module:Qualname``) for as long as the log exists
(docs/events.md, "Names"). Registering the old topic of a moved aggregate makes its events, and
its events' nested classes, resolve to where the class lives now; registering an old module's
name does the same for every class that was in it. A ``Ledger`` calls ``register``
when it is made, before it reads anything.
"""

from __future__ import annotations

from eventsourcing.utils import register_topic, resolve_topic

# an old topic -> the topic now (a module's name: every class in it moved)
MOVED: dict[str, str] = {
    "domain.webhook:WebhookDelivery": "domain.webhook_delivery:WebhookDelivery",
    "application.webhook_logs": "application.webhooks.logs",
    "domain.command_run:CommandRun": "domain.program_run:ProgramRun",
    "domain.command_run:CommandOutput": "domain.program_run:ProgramOutput",
    "application.command_runs:CommandRunLogged": "application.programs.runs:ProgramRunLogged",
}


def register() -> None:
    for old, new in MOVED.items():
        register_topic(old, resolve_topic(new))
