"""A team's queue controls: which priority bands are paused (seed 000's queues are bands)."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain.place import Placed

_NAMESPACE = uuid5(NAMESPACE_URL, "https://taskwarden.dev/queues")

# seed 000's queue names: bands of the task priority (1 low ... 4 urgent)
BANDS: dict[str, frozenset[int]] = {
    "high_priority": frozenset({3, 4}),
    "normal_priority": frozenset({2}),
    "low_priority": frozenset({1}),
}


def band_of(priority: int) -> str:
    return next(name for name, members in BANDS.items() if priority in members)


def queue_control_id(team_id: str) -> UUID:
    return uuid5(_NAMESPACE, team_id)


class QueueControl(Placed):
    """One per team, created the first time a band is paused."""

    @staticmethod
    def create_id(team_id: str) -> UUID:
        return queue_control_id(team_id)

    @event("Created")
    def __init__(self, team_id: str) -> None:
        self.team_id = team_id
        self.paused: dict[str, str | None] = {}  # band -> reason

    def pause(self, band: str, reason: str | None, actor: str) -> bool:
        if band in self.paused:
            return False
        self._paused(band=band, reason=reason, actor=actor)
        return True

    @event("Paused")
    def _paused(self, band: str, reason: str | None, actor: str) -> None:
        self.paused = {**self.paused, band: reason}

    def resume(self, band: str, actor: str) -> bool:
        if band not in self.paused:
            return False
        self._resumed(band=band, actor=actor)
        return True

    @event("Resumed")
    def _resumed(self, band: str, actor: str) -> None:
        self.paused = {k: v for k, v in self.paused.items() if k != band}

    def allows(self, priority: int) -> bool:
        return band_of(priority) not in self.paused
