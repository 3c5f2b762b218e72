"""A budget's period: what a team (per UTC day) or a project (per UTC month) may spend, and the
thresholds its spending reached, each recorded once.

The limits are team settings (``domain.team_settings``); what was spent is the cost rollup of the
usage events (``projections.costs``). This aggregate keeps only what must happen once: the 50, 80
and 100 % crossings of one period under one limit. A limit changed within the period starts its
thresholds over (raising 10 USD to 20 USD makes 20 USD reachable), a new period starts with none.

Amounts are whole hundred-millionths of a dollar (``domain.usage.COST_DIGITS``): the comparison
of what was spent with a limit is exact, not a float's.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Final
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain.place import IN_PROJECT, Placed
from domain.usage import COST_DIGITS

_NAMESPACE = uuid5(NAMESPACE_URL, "https://taskwarden.dev/budgets")

THRESHOLDS: Final = (50, 80, 100)  # percent of the limit
TEAM: Final = "team"  # the team's daily limit
PROJECT: Final = "project"  # a project's monthly budget
UNITS: Final = 10**COST_DIGITS  # per dollar


def period_of(scope: str, at: datetime) -> str:
    """The UTC day (``2026-12-03``) of a team's limit, the UTC month (``2026-12``) of a
    project's."""
    day = at.date().isoformat()
    return day if scope == TEAM else day[:7]


def budget_id(team_id: str, scope: str, project_id: str | None, period: str) -> UUID:
    return uuid5(_NAMESPACE, f"{team_id}\x1f{scope}\x1f{project_id or ''}\x1f{period}")


def units(amount: Decimal) -> int:
    """Dollars as whole hundred-millionths."""
    return int(amount * UNITS)


def reached(spent_units: int, limit_units: int) -> list[int]:
    """The thresholds ``spent_units`` has reached: a limit of 0 is reached by nothing spent."""
    return [p for p in THRESHOLDS if spent_units * 100 >= limit_units * p]


class Budget(Placed):
    """One scope's budget over one period (``scope``: team or project)."""

    class Event(Placed.Event):
        PLACE = IN_PROJECT  # a team's budget: project_id is None
        project_id: str | None

    @staticmethod
    def create_id(team_id: str, project_id: str | None, scope: str, period: str) -> UUID:
        return budget_id(team_id, scope, project_id, period)

    @event("Opened")
    def __init__(self, team_id: str, project_id: str | None, scope: str, period: str) -> None:
        self.team_id = team_id
        self.project_id = project_id
        self.scope = scope
        self.period = period
        self.crossed: dict[str, list[int]] = {}  # limit units (as text) -> thresholds recorded

    def cross(self, spent_units: int, limit_units: int, mode: str, at: datetime) -> list[int]:
        """Records each threshold of the limit that the spending reached and that was not
        recorded before for this limit; returns them (none: nothing new)."""
        done = self.crossed.get(str(limit_units), [])
        new = [p for p in reached(spent_units, limit_units) if p not in done]
        for percent in new:
            fields = {
                "scope": self.scope,
                "period": self.period,
                "percent": percent,
                "spent_units": spent_units,
                "limit_units": limit_units,
                "spent_usd": spent_units / UNITS,
                "limit_usd": limit_units / UNITS,
                "mode": mode,
                "at": at,
            }
            if percent == 100:
                self._exceeded(**fields)
            else:
                self._threshold_reached(**fields)
        return new

    def _note(self, percent: int, limit_units: int) -> None:
        key = str(limit_units)
        self.crossed = {**self.crossed, key: [*self.crossed.get(key, []), percent]}

    @event("ThresholdReached")
    def _threshold_reached(
        self,
        scope: str,
        period: str,
        percent: int,
        spent_units: int,
        limit_units: int,
        spent_usd: float,
        limit_usd: float,
        mode: str,
        at: datetime,
    ) -> None:
        self._note(percent, limit_units)

    @event("Exceeded")
    def _exceeded(
        self,
        scope: str,
        period: str,
        percent: int,
        spent_units: int,
        limit_units: int,
        spent_usd: float,
        limit_usd: float,
        mode: str,
        at: datetime,
    ) -> None:
        self._note(percent, limit_units)

    def exceeded_under(self, limit_units: int) -> bool:
        """The 100 % threshold of this limit was recorded."""
        return 100 in self.crossed.get(str(limit_units), [])
