"""Where a team stands against its budgets (docs/costs.md, "Budgets"), and the rule that holds
them: no new execution starts in a scope that has spent its limit.

A team's ``daily_cost_limit`` covers the UTC day, a project budget the UTC month (team settings).
What was spent is the cost rollup of the usage events (``projections.costs``): one sum of one
log, the same the cost reports answer. A scope is held from the moment the views have applied the
usage that reached its limit until the limit is raised or removed, or a new period begins: nothing
is recorded to release it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

import msgspec

from application.store import Store
from domain.budget import PROJECT, TEAM, Budget, budget_id, period_of, units
from domain.errors import BudgetExceededError
from domain.team_settings import TeamSettings, team_settings_id
from projections.cost_rows import CostQuery
from projections.costs import CostTotals


class Spending(Protocol):
    """What the cost rollups answer (the read model)."""

    def cost_totals(self, team_id: str, q: CostQuery) -> CostTotals: ...


class Standing(msgspec.Struct, frozen=True, kw_only=True):
    """One scope's spending in its current period against its limit."""

    team_id: str
    scope: str  # team (daily limit) or project (monthly budget)
    project_id: str | None
    period: str  # 2026-12-03 (a day) or 2026-12 (a month)
    limit_units: int  # hundred-millionths of a dollar
    spent_units: int
    mode: str  # soft or hard (the team's budget_mode)

    @property
    def exceeded(self) -> bool:
        return self.spent_units >= self.limit_units

    @property
    def percent(self) -> float:
        if self.limit_units == 0:
            return 100.0 if self.spent_units == 0 else float("inf")
        return round(100 * self.spent_units / self.limit_units, 2)

    def shown(self) -> dict[str, Any]:
        """As the API answers it."""
        return {
            "scope": self.scope,
            "project_id": self.project_id,
            "period": self.period,
            "limit_usd": self.limit_units / 10**8,
            "spent_usd": self.spent_units / 10**8,
            "percent": self.percent if self.limit_units else None,
            "exceeded": self.exceeded,
            "mode": self.mode,
        }

    def why(self) -> str:
        what = "the team's daily cost limit" if self.scope == TEAM else "the project's budget"
        return (
            f"{what} for {self.period} is spent: {self.spent_units / 10**8:.2f} of "
            f"{self.limit_units / 10**8:.2f} USD"
        )


def settings_of(store: Store, team_id: str) -> TeamSettings | None:
    return store.find(TeamSettings, team_settings_id(team_id), team_id)  # None: the defaults


def _spent(views: Spending, team_id: str, project_id: str | None, since: str, today: str) -> int:
    query = CostQuery(project_id=project_id, day_from=since, day_to=today)
    return views.cost_totals(team_id, query).cost_units


def standings(
    store: Store,
    views: Spending,
    team_id: str,
    projects: Iterable[str] | None,
    now: datetime,
) -> list[Standing]:
    """The team's limit and the budgets of ``projects`` (None: every project with one), each
    with what its current period spent. No limit set: nothing to stand against."""
    settings = settings_of(store, team_id)
    if settings is None:
        return []
    found = [s for s in [team_standing(views, settings, now)] if s is not None]
    wanted = set(settings.project_budgets) if projects is None else set(projects)
    for project_id in sorted(wanted & set(settings.project_budgets)):
        standing = project_standing(views, settings, project_id, now)
        if standing is not None:
            found.append(standing)
    return found


def team_standing(views: Spending, settings: TeamSettings, now: datetime) -> Standing | None:
    """The team's daily limit and what today (UTC) spent; None: no limit."""
    if settings.daily_cost_limit is None:
        return None
    today = now.date().isoformat()
    spent = _spent(views, settings.team_id, None, today, today)
    return _standing(TEAM, None, now, settings.daily_cost_limit, spent, settings)


def project_standing(
    views: Spending, settings: TeamSettings, project_id: str, now: datetime
) -> Standing | None:
    """The project's monthly budget and what this month (UTC) spent; None: no budget."""
    amount = settings.project_budgets.get(project_id)
    if amount is None:
        return None
    today = now.date()
    month = date(today.year, today.month, 1).isoformat()
    spent = _spent(views, settings.team_id, project_id, month, today.isoformat())
    return _standing(PROJECT, project_id, now, amount, spent, settings)


def _standing(
    scope: str, project_id: str | None, now: datetime, limit: Any, spent: int, s: TeamSettings
) -> Standing:
    return Standing(
        team_id=s.team_id,
        scope=scope,
        project_id=project_id,
        period=period_of(scope, now),
        limit_units=units(limit),
        spent_units=spent,
        mode=s.budget_mode,
    )


def holding(
    store: Store, views: Spending, team_id: str, project_id: str, now: datetime
) -> Standing | None:
    """The spent budget that holds new executions of the project's tasks, if any."""
    found = standings(store, views, team_id, [project_id], now)
    return next((s for s in found if s.exceeded), None)


def refuse_if_spent(store: Store, views: Spending, team_id: str, project_id: str) -> None:
    """Raises ``BudgetExceededError`` (409 BUDGET_EXCEEDED) when a new execution may not start."""
    held = holding(store, views, team_id, project_id, store.clock.now())
    if held is not None:
        raise BudgetExceededError(held.why(), **held.shown())


class Gate:
    """The scheduler's budget check over one claim: each team's settings, the team's standing
    and each project's read once. ``settings(team_id, again)``: the team's settings, as the
    scheduler keeps a copy of them (``application/claim_copies.py``); a refusal decided on
    them is decided once more on ``settings(team_id, True)``, a fresh read. Without it, the
    settings are read from the store."""

    def __init__(
        self,
        store: Store,
        views: Spending,
        now: datetime,
        *,
        settings: Callable[[str, bool], TeamSettings | None] | None = None,
    ) -> None:
        self._read = settings or (lambda team_id, again: settings_of(store, team_id))
        self._copies = settings is not None  # else every read is fresh
        self._fresh: set[str] = set()
        self._views = views
        self._now = now
        self._settings: dict[str, TeamSettings | None] = {}
        self._team: dict[str, bool] = {}
        self._project: dict[tuple[str, str], bool] = {}

    def open(self, team_id: str, project_id: str) -> bool:
        if self._open(team_id, project_id):
            return True
        if not self._copies or team_id in self._fresh:
            return False
        self._fresh.add(team_id)  # refused on a copy: once more on the settings read now
        self._settings.pop(team_id, None)
        self._team.pop(team_id, None)
        self._project = {k: v for k, v in self._project.items() if k[0] != team_id}
        return self._open(team_id, project_id)

    def _open(self, team_id: str, project_id: str) -> bool:
        if team_id not in self._settings:
            self._settings[team_id] = self._read(team_id, team_id in self._fresh)
        settings = self._settings[team_id]
        if settings is None:
            return True
        if team_id not in self._team:
            standing = team_standing(self._views, settings, self._now)
            self._team[team_id] = standing is not None and standing.exceeded
        if self._team[team_id]:
            return False
        key = (team_id, project_id)
        if key not in self._project:
            standing = project_standing(self._views, settings, project_id, self._now)
            self._project[key] = standing is not None and standing.exceeded
        return not self._project[key]


def spent_notice(store: Store, team_id: str, project_id: str) -> str | None:
    """What a running agent is told while the budget its work counts against is spent: read from
    the thresholds the budget watch recorded (the store, not the views), under today's limits."""
    settings = settings_of(store, team_id)
    if settings is None:
        return None
    now = store.clock.now()
    limits: list[tuple[str, str | None, Decimal | None]] = [
        (TEAM, None, settings.daily_cost_limit),
        (PROJECT, project_id, settings.project_budgets.get(project_id)),
    ]
    for scope, project, limit in limits:
        if limit is None:
            continue
        key = budget_id(team_id, scope, project, period_of(scope, now))
        budget = store.find(Budget, key, team_id)
        if budget is not None and budget.exceeded_under(units(limit)):
            what = "the team's daily cost limit" if scope == TEAM else "the project's budget"
            mode = "it will be stopped" if settings.budget_mode == "hard" else "finish soon"
            return f"{what} for {budget.period} is spent ({limit} USD): {mode}"
    return None
