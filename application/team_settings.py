"""Seed 001's settings, per team: any member reads them, admins change them.

A change is partial: what the body leaves out stays as it is. A per-project budget names a project
of the team (by id or slug) and is kept under the project's id; another team's project is not
found, as everywhere. A key scoped to one project reads only that project's budget and changes
nothing: the settings are the whole team's.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from msgspec import UNSET, Meta, UnsetType

from application.commands import Command, Ref
from application.errors import NotFoundError, PermissionDeniedError
from application.results import Changed
from application.store import Store, project_scope
from domain.project import Project
from domain.team_settings import (
    DEFAULTS,
    KEEP,
    MAX_MODEL_NAME,
    MAX_REPAIR_ATTEMPTS,
    Keep,
    TeamSettings,
    team_settings_id,
)
from domain.values import Actor, rfc3339

T = TypeVar("T")

# US dollars: a number, or seed 001's string ("10.00"); at most two decimal places
AmountIn = (
    Annotated[float, Meta(ge=0, le=1_000_000_000)]
    | Annotated[str, Meta(pattern=r"^[0-9]{1,10}(\.[0-9]{1,2})?$")]
)
# a number, or seed 001's string ("3")
AttemptsIn = (
    Annotated[int, Meta(ge=0, le=MAX_REPAIR_ATTEMPTS)]
    | Annotated[str, Meta(pattern=r"^[0-9]{1,2}$")]
)
ModelName = Annotated[str, Meta(min_length=1, max_length=MAX_MODEL_NAME, pattern=r"^\S+$")]


class UpdateSettings(Command, frozen=True):
    """``null`` clears a limit or the fallback model; a project budget of ``null`` is removed."""

    daily_cost_limit: AmountIn | None | UnsetType = UNSET
    smart_model_fallback: ModelName | None | UnsetType = UNSET
    max_repair_attempts: AttemptsIn | UnsetType = UNSET
    budget_mode: Literal["soft", "hard"] | UnsetType = UNSET
    project_budgets: Annotated[dict[Ref, AmountIn | None], Meta(max_length=100)] | UnsetType = UNSET


def _dollars(value: float | str | None) -> Decimal | None:
    """The amount as sent: a float's shortest text, so that 10.1 is 10.1, not its binary twin."""
    return None if value is None else Decimal(value if isinstance(value, str) else repr(value))


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _find(store: Store, team_id: str) -> TeamSettings | None:
    return store.find(TeamSettings, team_settings_id(team_id), team_id)  # None: never changed


def represent(settings: TeamSettings | None) -> dict[str, Any]:
    """The settings as answered: amounts as numbers; for a project-scoped key, only its
    project's budget."""
    scope = project_scope()
    if settings is None:
        return {
            **DEFAULTS,
            "project_budgets": {},
            "version": 0,
            "updated_at": None,
            "updated_by": None,
        }
    budgets = {p: float(v) for p, v in settings.project_budgets.items() if scope in (None, p)}
    return {
        "daily_cost_limit": _number(settings.daily_cost_limit),
        "smart_model_fallback": settings.smart_model_fallback,
        "max_repair_attempts": settings.max_repair_attempts,
        "budget_mode": settings.budget_mode,
        "project_budgets": budgets,
        "version": settings.version,
        "updated_at": rfc3339(settings.modified_on),
        "updated_by": settings.updated_by,
    }


def read_settings(store: Store, team_id: str) -> dict[str, Any]:
    return represent(_find(store, team_id))


def _project_budgets(
    store: Store, settings: TeamSettings, wanted: dict[str, float | str | None], team_id: str
) -> dict[str, Decimal | None]:
    """Keyed by the project's id. A budget kept for a project since deleted can still be
    removed by its id."""
    budgets: dict[str, Decimal | None] = {}
    for ref, value in wanted.items():
        if value is None and ref in settings.project_budgets:
            budgets[ref] = None
            continue
        try:
            project = store.load_live(Project, ref, team_id, "project")
        except NotFoundError:
            raise NotFoundError("project", ref) from None
        budgets[str(project.id)] = _dollars(value)
    return budgets


def _or_keep(value: T | UnsetType) -> T | Keep:
    return KEEP if isinstance(value, UnsetType) else value


def update_settings(store: Store, cmd: UpdateSettings, by: Actor) -> Changed:
    """Writes one event with what changed, or nothing when nothing does."""
    if project_scope() is not None:
        raise PermissionDeniedError("change the team's settings", "project-scoped key")
    limit, attempts = cmd.daily_cost_limit, cmd.max_repair_attempts
    wanted = {} if isinstance(cmd.project_budgets, UnsetType) else cmd.project_budgets

    def decide() -> Changed:
        existing = _find(store, by.team_id)
        settings = existing or TeamSettings(team_id=by.team_id)
        changed = settings.update(
            actor=by.id,
            request_id=by.request_id,
            daily_cost_limit=_or_keep(limit if isinstance(limit, UnsetType) else _dollars(limit)),
            smart_model_fallback=_or_keep(cmd.smart_model_fallback),
            max_repair_attempts=_or_keep(
                attempts if isinstance(attempts, UnsetType) else int(attempts)
            ),
            budget_mode=_or_keep(cmd.budget_mode),
            project_budgets=_project_budgets(store, settings, wanted, by.team_id),
        )
        if not changed:  # a team's first request that changes nothing creates nothing either
            return Changed(data=represent(existing), position=store.max_position())
        return Changed(data=represent(settings), position=store.commit(settings))

    return store.with_retries(decide)
