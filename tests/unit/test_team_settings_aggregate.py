"""The TeamSettings aggregate: defaults, validated values, one event per change with its actor
and only what changed, no event when nothing changes, and a refused change changes nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from domain.errors import RuleViolationError
from domain.team_settings import DEFAULTS, TeamSettings, team_settings_id
from tests.stores import memory_store

PROJECT = "5b2c1a7e-0000-4000-8000-000000000001"


def fresh() -> TeamSettings:
    settings = TeamSettings(team_id="team-a")
    settings.collect_events()
    return settings


def change(settings: TeamSettings, **values: Any) -> bool:
    return settings.update(actor="user-1", request_id="req-1", **values)


def state(settings: TeamSettings) -> dict[str, Any]:
    names = (*DEFAULTS, "project_budgets", "updated_by")
    return {name: getattr(settings, name) for name in names}


def then_refused(settings: TeamSettings, field: str, **values: Any) -> None:
    before = state(settings)
    with pytest.raises(RuleViolationError) as refused:
        change(settings, **values)
    assert refused.value.details["field"] == field
    assert settings.collect_events() == []
    assert state(settings) == before


def test_a_new_teams_settings_are_the_defaults_and_its_id_comes_from_the_team():
    settings = TeamSettings(team_id="team-a")
    assert settings.id == team_settings_id("team-a") != team_settings_id("team-b")
    assert state(settings) == {**DEFAULTS, "project_budgets": {}, "updated_by": None}
    assert DEFAULTS["budget_mode"] == "soft" and DEFAULTS["daily_cost_limit"] is None


def test_a_change_is_one_event_with_its_actor_request_and_only_what_changed():
    settings = fresh()
    assert change(settings, daily_cost_limit=Decimal("10"), budget_mode="hard")
    [updated] = settings.collect_events()
    assert isinstance(updated, TeamSettings.Updated)
    assert updated.changed == {"daily_cost_limit": Decimal("10.00"), "budget_mode": "hard"}
    assert updated.project_budgets == {}
    assert (updated.actor, updated.request_id, updated.team_id) == ("user-1", "req-1", "team-a")
    assert settings.daily_cost_limit == Decimal("10.00") and settings.budget_mode == "hard"


def test_values_equal_to_the_current_ones_are_left_out_of_the_event():
    settings = fresh()
    change(settings, daily_cost_limit=Decimal("5.00"), max_repair_attempts=3)
    [updated] = settings.collect_events()
    assert updated.changed == {"daily_cost_limit": Decimal("5.00")}  # 3 is the default


def test_a_change_that_changes_nothing_writes_no_event():
    settings = fresh()
    change(settings, daily_cost_limit=Decimal("5"), project_budgets={PROJECT: Decimal("50")})
    settings.collect_events()
    assert not change(settings, daily_cost_limit=Decimal("5.0"), budget_mode="soft")
    assert not change(settings, project_budgets={PROJECT: Decimal("50.00")})
    assert not change(settings)
    assert settings.collect_events() == []


def test_project_budgets_are_set_changed_and_removed_one_project_at_a_time():
    settings = fresh()
    other = "5b2c1a7e-0000-4000-8000-000000000002"
    change(settings, project_budgets={PROJECT: Decimal("100"), other: Decimal("20")})
    change(settings, project_budgets={PROJECT: None, other: Decimal("20")})
    first, second = settings.collect_events()
    assert first.project_budgets == {PROJECT: Decimal("100.00"), other: Decimal("20.00")}
    assert second.project_budgets == {PROJECT: None} and second.changed == {}
    assert settings.project_budgets == {other: Decimal("20.00")}


def test_clearing_the_limit_and_the_fallback_model_is_a_change():
    settings = fresh()
    change(settings, daily_cost_limit=Decimal("1"), smart_model_fallback="claude-sonnet-4")
    change(settings, daily_cost_limit=None, smart_model_fallback=None)
    _, cleared = settings.collect_events()
    assert cleared.changed == {"daily_cost_limit": None, "smart_model_fallback": None}


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("daily_cost_limit", {"daily_cost_limit": Decimal("-0.01")}),
        ("daily_cost_limit", {"daily_cost_limit": Decimal("1.001")}),
        ("daily_cost_limit", {"daily_cost_limit": Decimal("NaN")}),
        ("daily_cost_limit", {"daily_cost_limit": Decimal("Infinity")}),
        ("daily_cost_limit", {"daily_cost_limit": Decimal("1000000000.01")}),
        ("smart_model_fallback", {"smart_model_fallback": ""}),
        ("smart_model_fallback", {"smart_model_fallback": "a model"}),
        ("smart_model_fallback", {"smart_model_fallback": "m" * 201}),
        ("max_repair_attempts", {"max_repair_attempts": -1}),
        ("max_repair_attempts", {"max_repair_attempts": 21}),
        ("max_repair_attempts", {"max_repair_attempts": True}),
        ("budget_mode", {"budget_mode": "strict"}),
        (f"project_budgets.{PROJECT}", {"project_budgets": {PROJECT: Decimal("-1")}}),
    ],
)
def test_a_bad_value_is_refused_with_its_field_and_changes_nothing(field, values):
    settings = fresh()
    then_refused(settings, field, **{"smart_model_fallback": "gpt-5", **values})  # none of it


def test_the_bounds_themselves_are_accepted():
    settings = fresh()
    assert change(settings, daily_cost_limit=Decimal(0), max_repair_attempts=20)
    assert change(settings, daily_cost_limit=Decimal("1000000000"), max_repair_attempts=0)
    assert settings.daily_cost_limit == Decimal("1000000000.00")


def test_replay_gives_the_same_settings_amounts_exact():
    store = memory_store()
    settings = TeamSettings(team_id="team-a")
    change(settings, daily_cost_limit=Decimal("10.10"), smart_model_fallback="gpt-5")
    change(settings, project_budgets={PROJECT: Decimal("0.10")}, max_repair_attempts=7)
    store.commit(settings)
    copy = store.find(TeamSettings, settings.id, "team-a")
    assert copy is not None and copy.version == 3
    assert state(copy) == state(settings)
    assert copy.daily_cost_limit == Decimal("10.10") and isinstance(copy.daily_cost_limit, Decimal)
    assert copy.project_budgets == {PROJECT: Decimal("0.10")}
    store.close()
