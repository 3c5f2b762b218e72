"""Admins announce maintenance and raise alerts; webhooks and sockets of the team hear them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta

from application.commands import Command
from application.results import Created
from application.store import Store
from domain.system import System, system_id
from domain.values import Actor, rfc3339

Message = Annotated[str, Meta(min_length=1, max_length=2_000)]


class AnnounceMaintenance(Command, frozen=True):
    message: Message
    starts_at: Annotated[datetime, Meta(tz=True)] | None = None
    ends_at: Annotated[datetime, Meta(tz=True)] | None = None


class RaiseAlert(Command, frozen=True):
    message: Message
    severity: Literal["info", "warning", "critical"] = "warning"


def team_system(store: Store, team_id: str) -> System:
    """The team's System aggregate (a new one before its first notice)."""
    return store.find(System, system_id(team_id), team_id) or System(team_id=team_id)


def announce_maintenance(store: Store, cmd: AnnounceMaintenance, by: Actor) -> Created:
    def decide() -> Created:
        system = team_system(store, by.team_id)
        system.announce_maintenance(cmd.message, cmd.starts_at, cmd.ends_at, by.id, by.request_id)
        position = store.commit(system)
        data = {
            "type": "system.maintenance",
            "message": cmd.message,
            "starts_at": rfc3339(cmd.starts_at),
            "ends_at": rfc3339(cmd.ends_at),
        }
        return Created(data=data, position=position)

    return store.with_retries(decide)


def raise_alert(store: Store, cmd: RaiseAlert, by: Actor) -> Created:
    def decide() -> Created:
        system = team_system(store, by.team_id)
        system.raise_alert(cmd.message, cmd.severity, by.id, by.request_id)
        position = store.commit(system)
        data = {"type": "system.alert", "message": cmd.message, "severity": cmd.severity}
        return Created(data=data, position=position)

    return store.with_retries(decide)
