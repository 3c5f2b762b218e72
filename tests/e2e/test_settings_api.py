"""Seed 001's team settings over HTTP: read by any member, changed in part by admins, one event per
change; every bad value is refused in the envelope with its field, and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest

from domain.team_settings import TeamSettings, team_settings_id
from tests.e2e.conftest import Api, token

DEFAULTS = {
    "daily_cost_limit": None,
    "smart_model_fallback": None,
    "max_repair_attempts": 3,
    "budget_mode": "soft",
    "project_budgets": {},
    "version": 0,
    "updated_at": None,
    "updated_by": None,
}


def settings_events(api: Api, team: str = "default") -> list[Any]:
    store = api.role.services.store
    return [e for e in store.events_of(team_settings_id(team), team) if e.originator_version > 1]


def as_role(api: Api, role: str, team: str = "default") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(api.client, team, role)}"}


def test_a_team_that_changed_nothing_reads_the_defaults_on_both_paths(api):
    assert api.ok("GET", "/api/settings")["data"] == DEFAULTS
    assert api.ok("GET", "/api/system/settings")["data"] == DEFAULTS


def test_an_admin_changes_settings_and_every_member_reads_them(api):
    body = {
        "daily_cost_limit": 10.5,
        "smart_model_fallback": "claude-sonnet-4-5",
        "max_repair_attempts": 5,
        "budget_mode": "hard",
    }
    answer = api.ok("POST", "/api/settings", 200, json=body)
    data = answer["data"]
    assert {k: data[k] for k in body} == body
    assert data["version"] == 2 and data["updated_by"]
    [event] = settings_events(api)
    assert isinstance(event, TeamSettings.Updated) and event.actor == data["updated_by"]
    assert event.request_id == answer["meta"]["request_id"]
    for role in ("viewer", "operator", "approver"):
        read = api.client.get("/api/settings", headers=as_role(api, role))
        assert read.status_code == 200 and read.json()["data"] == data


def test_a_partial_update_changes_only_what_it_names(api):
    api.ok("POST", "/api/settings", 200, json={"daily_cost_limit": 5, "max_repair_attempts": 7})
    data = api.ok("POST", "/api/settings", 200, json={"smart_model_fallback": "gpt-5"})["data"]
    assert (data["daily_cost_limit"], data["max_repair_attempts"]) == (5.0, 7)
    assert data["smart_model_fallback"] == "gpt-5" and data["budget_mode"] == "soft"
    assert [e.changed for e in settings_events(api)][-1] == {"smart_model_fallback": "gpt-5"}


def test_seed_001s_strings_are_accepted_and_answered_as_numbers(api):
    body = {"daily_cost_limit": "10.00", "max_repair_attempts": "3"}
    data = api.ok("POST", "/api/settings", 200, json=body)["data"]
    assert data["daily_cost_limit"] == 10.0 and data["max_repair_attempts"] == 3


def test_the_alias_reads_and_patches_the_same_settings(api):
    api.ok("PATCH", "/api/system/settings", json={"daily_cost_limit": 2.25})
    assert api.ok("GET", "/api/settings")["data"]["daily_cost_limit"] == 2.25
    api.ok("POST", "/api/settings", 200, json={"budget_mode": "hard"})
    data = api.ok("GET", "/api/system/settings")["data"]
    assert (data["daily_cost_limit"], data["budget_mode"]) == (2.25, "hard")


def test_a_change_that_changes_nothing_writes_nothing(api):
    api.ok("POST", "/api/settings", 200, json={"daily_cost_limit": 5})
    head = api.position()
    answer = api.ok("POST", "/api/settings", 200, json={"daily_cost_limit": "5.00"})
    assert api.position() == head and answer["meta"]["position"] == head
    assert answer["data"]["version"] == 2
    assert len(settings_events(api)) == 1


def test_a_new_teams_empty_change_creates_nothing(api):
    head = api.position()
    assert api.ok("POST", "/api/settings", 200, json={})["data"] == DEFAULTS
    assert api.position() == head


def test_non_admins_may_not_change_settings(api):
    for role in ("viewer", "operator", "approver"):
        for method, path in (("POST", "/api/settings"), ("PATCH", "/api/system/settings")):
            response = api.client.request(
                method, path, json={"daily_cost_limit": 1}, headers=as_role(api, role)
            )
            assert response.status_code == 403, response.text
            assert response.json()["error"]["code"] == "AUTH_INSUFFICIENT_PERMISSIONS"
    assert api.ok("GET", "/api/settings")["data"] == DEFAULTS


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"daily_cost_limit": -1}, "$.daily_cost_limit"),
        ({"daily_cost_limit": "1.234"}, "$.daily_cost_limit"),
        ({"daily_cost_limit": "ten"}, "$.daily_cost_limit"),
        ({"daily_cost_limit": 0.001}, "daily_cost_limit"),
        ({"daily_cost_limit": 2_000_000_000}, "$.daily_cost_limit"),
        ({"smart_model_fallback": ""}, "$.smart_model_fallback"),
        ({"smart_model_fallback": "a model"}, "$.smart_model_fallback"),
        ({"smart_model_fallback": "m" * 201}, "$.smart_model_fallback"),
        ({"max_repair_attempts": 21}, "$.max_repair_attempts"),
        ({"max_repair_attempts": -1}, "$.max_repair_attempts"),
        ({"max_repair_attempts": "42"}, "max_repair_attempts"),
        ({"max_repair_attempts": None}, "$.max_repair_attempts"),
        ({"budget_mode": "strict"}, "$.budget_mode"),
        ({"project_budgets": {"x": -5}}, "$.project_budgets[...]"),
    ],
)
def test_each_bad_value_is_refused_with_its_field_and_nothing_is_stored(sqlite_api, body, field):
    sqlite_api.ok("POST", "/api/settings", 200, json={"daily_cost_limit": 1})
    head = sqlite_api.position()
    wanted = {"budget_mode": "hard", **body}  # a good value beside the bad one is not kept either
    error = sqlite_api.error("POST", "/api/settings", 422, "VALIDATION_ERROR", json=wanted)
    assert error["details"]["field"] == field
    assert sqlite_api.position() == head
    assert sqlite_api.ok("GET", "/api/settings")["data"]["budget_mode"] == "soft"


def test_per_project_budgets_are_kept_under_the_projects_id_and_removed_with_null(api):
    web = api.project(name="Web", slug="web")
    data = api.ok("POST", "/api/settings", 200, json={"project_budgets": {"web": 100}})["data"]
    assert data["project_budgets"] == {web["id"]: 100.0}
    data = api.ok("POST", "/api/settings", 200, json={"project_budgets": {web["id"]: None}})["data"]
    assert data["project_budgets"] == {}


def test_a_budget_for_another_teams_project_is_not_found_and_stores_nothing(api):
    theirs = Api(api.client).ok(
        "POST",
        "/api/projects/",
        201,
        json={"name": "Theirs"},
        headers=as_role(api, "admin", "team-b"),
    )["data"]
    head = api.position()
    body = {"daily_cost_limit": 3, "project_budgets": {theirs["id"]: 10}}
    error = api.error("POST", "/api/settings", 404, "PROJECT_NOT_FOUND", json=body)
    assert error["details"] == {"id": theirs["id"]}
    assert api.position() == head and api.ok("GET", "/api/settings")["data"] == DEFAULTS


def test_one_teams_change_leaves_another_teams_settings_as_they_were(api):
    b = as_role(api, "admin", "team-b")
    api.client.post("/api/settings", json={"max_repair_attempts": 9}, headers=b)
    api.ok("POST", "/api/settings", 200, json={"daily_cost_limit": 1, "budget_mode": "hard"})
    theirs = api.client.get("/api/settings", headers=b).json()["data"]
    assert theirs["daily_cost_limit"] is None and theirs["budget_mode"] == "soft"
    assert theirs["max_repair_attempts"] == 9
    assert api.ok("GET", "/api/settings")["data"]["max_repair_attempts"] == 3


def test_a_project_scoped_key_reads_only_its_projects_budget_and_changes_nothing(api):
    web, docs = api.project(name="Web"), api.project(name="Docs")
    budgets = {web["id"]: 100, docs["id"]: 20}
    api.ok("POST", "/api/settings", 200, json={"project_budgets": budgets})
    body = {"name": "web-admin", "role": "admin", "project_id": web["id"]}
    key = api.ok("POST", "/api/auth/api-keys", 201, json=body)["data"]["key"]
    scoped = {"Authorization": f"Bearer {key}"}
    read = api.client.get("/api/settings", headers=scoped).json()["data"]
    assert read["project_budgets"] == {web["id"]: 100.0}
    head = api.position()
    change = api.client.post("/api/settings", json={"daily_cost_limit": 1}, headers=scoped)
    assert change.status_code == 403, change.text
    assert api.position() == head
