"""A team's settings (seed 001's ``/api/settings``): typed values with their rules, each change an
event that names who made it and carries only what changed, so that the log says which admin set
which limit when.

One aggregate per team, its id derived from the team, created by the first change. Until then the
team has the defaults (``DEFAULTS``). Amounts are ``Decimal`` US dollars with at most two decimal
places: a limit compared with summed costs must not drift the way a float does.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain.errors import RuleViolationError
from domain.place import Placed

_NAMESPACE = uuid5(NAMESPACE_URL, "https://taskwarden.dev/settings")

MAX_AMOUNT = Decimal(1_000_000_000)  # US dollars
AMOUNT_PLACES = 2  # cents
MAX_MODEL_NAME = 200
MAX_REPAIR_ATTEMPTS = 20
MAX_PROJECT_BUDGETS = 1_000
BUDGET_MODES = ("soft", "hard")

# what a team has before any change
DEFAULTS: Final[dict[str, Any]] = {
    "daily_cost_limit": None,  # no limit
    "smart_model_fallback": None,  # no fallback model
    "max_repair_attempts": 3,
    "budget_mode": "soft",
}


class Keep:
    """The value of a setting a change leaves as it is."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = Keep()


def team_settings_id(team_id: str) -> UUID:
    return uuid5(_NAMESPACE, team_id)


def valid_amount(value: Decimal | None, field: str) -> Decimal | None:
    """A US dollar amount from 0 to ``MAX_AMOUNT`` in cents, or None (no limit)."""
    if value is None:
        return None
    if not value.is_finite() or value < 0 or value > MAX_AMOUNT:
        raise RuleViolationError(f"{field} must be from 0 to {MAX_AMOUNT} USD", field=field)
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -AMOUNT_PLACES:
        raise RuleViolationError(f"{field} has more than two decimal places", field=field)
    return value.quantize(Decimal(1).scaleb(-AMOUNT_PLACES))


def valid_model_name(value: str | None) -> str | None:
    field = "smart_model_fallback"
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_MODEL_NAME or any(c.isspace() for c in value):
        raise RuleViolationError(
            f"{field} must be 1 to {MAX_MODEL_NAME} characters without spaces", field=field
        )
    return value


def valid_repair_attempts(value: int) -> int:
    if isinstance(value, bool) or not 0 <= value <= MAX_REPAIR_ATTEMPTS:
        raise RuleViolationError(
            f"max_repair_attempts must be from 0 to {MAX_REPAIR_ATTEMPTS}",
            field="max_repair_attempts",
        )
    return value


def valid_budget_mode(value: str) -> str:
    if value not in BUDGET_MODES:
        raise RuleViolationError("budget_mode must be soft or hard", field="budget_mode")
    return value


class TeamSettings(Placed):
    """The team's settings; ``project_budgets`` maps a project's id to its monthly amount."""

    @staticmethod
    def create_id(team_id: str) -> UUID:
        return team_settings_id(team_id)

    @event("Created")
    def __init__(self, team_id: str) -> None:
        self.team_id = team_id
        self.daily_cost_limit: Decimal | None = DEFAULTS["daily_cost_limit"]
        self.smart_model_fallback: str | None = DEFAULTS["smart_model_fallback"]
        self.max_repair_attempts: int = DEFAULTS["max_repair_attempts"]
        self.budget_mode: str = DEFAULTS["budget_mode"]
        self.project_budgets: dict[str, Decimal] = {}
        self.updated_by: str | None = None

    def update(
        self,
        *,
        actor: str,
        request_id: str,
        daily_cost_limit: Decimal | None | Keep = KEEP,
        smart_model_fallback: str | None | Keep = KEEP,
        max_repair_attempts: int | Keep = KEEP,
        budget_mode: str | Keep = KEEP,
        project_budgets: Mapping[str, Decimal | None] | None = None,
    ) -> bool:
        """Validates every value first (a refused change changes nothing), then records what
        differs from now in one event; False, and no event, when nothing does. A project budget
        of None removes it. That each project exists in the team is the caller's check."""
        wanted: dict[str, Any] = {}
        if not isinstance(daily_cost_limit, Keep):
            wanted["daily_cost_limit"] = valid_amount(daily_cost_limit, "daily_cost_limit")
        if not isinstance(smart_model_fallback, Keep):
            wanted["smart_model_fallback"] = valid_model_name(smart_model_fallback)
        if not isinstance(max_repair_attempts, Keep):
            wanted["max_repair_attempts"] = valid_repair_attempts(max_repair_attempts)
        if not isinstance(budget_mode, Keep):
            wanted["budget_mode"] = valid_budget_mode(budget_mode)
        budgets = self._budget_changes(project_budgets or {})
        changed = {k: v for k, v in wanted.items() if getattr(self, k) != v}
        if not changed and not budgets:
            return False
        self._updated(changed=changed, project_budgets=budgets, actor=actor, request_id=request_id)
        return True

    def _budget_changes(self, wanted: Mapping[str, Decimal | None]) -> dict[str, Decimal | None]:
        checked = {
            project: valid_amount(value, f"project_budgets.{project}")
            for project, value in wanted.items()
        }
        changes = {p: v for p, v in checked.items() if self.project_budgets.get(p) != v}
        after = {**self.project_budgets, **changes}
        if sum(v is not None for v in after.values()) > MAX_PROJECT_BUDGETS:
            raise RuleViolationError(
                f"at most {MAX_PROJECT_BUDGETS} project budgets", field="project_budgets"
            )
        return changes

    @event("Updated")
    def _updated(
        self,
        changed: dict[str, Any],
        project_budgets: dict[str, Decimal | None],
        actor: str,
        request_id: str,
    ) -> None:
        for name, value in changed.items():
            setattr(self, name, value)
        budgets = {**self.project_budgets, **project_budgets}
        self.project_budgets = {p: v for p, v in budgets.items() if v is not None}
        self.updated_by = actor
