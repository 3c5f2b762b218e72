"""A team's system notices: maintenance windows and alerts (seed 000's system.* webhook events).

One aggregate per team, created by its first notice; each notice is one event, published as
``system.maintenance`` or ``system.alert``.
"""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain.place import Placed

_NAMESPACE = uuid5(NAMESPACE_URL, "https://taskwarden.dev/system")
SEVERITIES = ("info", "warning", "critical")


def system_id(team_id: str) -> UUID:
    return uuid5(_NAMESPACE, team_id)


class System(Placed):
    @staticmethod
    def create_id(team_id: str) -> UUID:
        return system_id(team_id)

    @event("Opened")
    def __init__(self, team_id: str) -> None:
        self.team_id = team_id
        self.notices = 0

    def announce_maintenance(
        self,
        message: str,
        starts_at: datetime | None,
        ends_at: datetime | None,
        actor: str,
        request_id: str,
    ) -> None:
        self._maintenance(
            message=message,
            starts_at=starts_at,
            ends_at=ends_at,
            actor=actor,
            request_id=request_id,
        )

    @event("Maintenance")
    def _maintenance(
        self,
        message: str,
        starts_at: datetime | None,
        ends_at: datetime | None,
        actor: str,
        request_id: str,
    ) -> None:
        self.notices += 1

    def raise_alert(self, message: str, severity: str, actor: str, request_id: str) -> None:
        self._alert(message=message, severity=severity, actor=actor, request_id=request_id)

    @event("Alert")
    def _alert(self, message: str, severity: str, actor: str, request_id: str) -> None:
        self.notices += 1
