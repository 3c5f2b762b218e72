"""Every failure answers in the envelope with the right status, and loses nothing stored."""

from __future__ import annotations

import json

import pytest


def test_unknown_route_is_404_in_the_envelope(sqlite_api):
    sqlite_api.error("GET", "/api/nothing-here", 404, "RESOURCE_NOT_FOUND")


def test_wrong_method_is_405_with_allow(sqlite_api):
    response = sqlite_api.delete("/api/tasks/")
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_a_body_over_one_mebibyte_is_413_and_stores_nothing(sqlite_api):
    project = sqlite_api.project()
    before = sqlite_api.position()
    huge = json.dumps({"title": "x", "project_id": project["id"], "description": "a" * 1_100_000})
    sqlite_api.error(
        "POST",
        "/api/tasks/",
        413,
        "PAYLOAD_TOO_LARGE",
        content=huge,
        headers={"content-type": "application/json"},
    )
    assert sqlite_api.position() == before


def test_a_streamed_body_over_the_limit_is_413_without_content_length(sqlite_api):
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"a" * 100_000

    sqlite_api.error(
        "POST",
        "/api/projects/",
        413,
        "PAYLOAD_TOO_LARGE",
        content=chunks(),
        headers={"content-type": "application/json"},
    )


def test_broken_json_is_422(sqlite_api):
    sqlite_api.error(
        "POST",
        "/api/projects/",
        422,
        "VALIDATION_INVALID_FORMAT",
        content=b'{"name": ',
        headers={"content-type": "application/json"},
    )


def test_missing_body_is_422(sqlite_api):
    sqlite_api.error("POST", "/api/projects/", 422, "VALIDATION_REQUIRED_FIELD")


def test_not_json_is_415(sqlite_api):
    sqlite_api.error(
        "POST",
        "/api/projects/",
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        content=b"name=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 5}, "$.name"),
        ({"name": ""}, "$.name"),
        ({"name": "x", "surprise": True}, "surprise"),
        ({"name": "x", "resource_limits": {"max_concurrent_tasks": 0}}, "max_concurrent_tasks"),
        ({"name": "x", "slug": "Not A Slug"}, "$.slug"),
        ({"name": "x", "status": "exploded"}, "$.status"),
        ({}, "name"),
    ],
)
def test_wrong_types_unknown_fields_and_out_of_range_values_are_422(sqlite_api, body, field):
    before = sqlite_api.position()
    error = sqlite_api.error("POST", "/api/projects/", 422, "VALIDATION_ERROR", json=body)
    assert field in error["message"]
    assert sqlite_api.position() == before


@pytest.mark.parametrize(
    "body",
    [
        {"title": "x", "priority": 9},
        {"title": "x", "priority": "critical"},
        {"title": "x", "estimated_duration": "tomorrow"},
        {"title": "x", "tags": ["a,b"]},
        {"title": "x" * 501},
    ],
)
def test_task_fields_out_of_range_are_422(sqlite_api, body):
    project = sqlite_api.project()
    sqlite_api.error(
        "POST", "/api/tasks/", 422, "VALIDATION_ERROR", json={**body, "project_id": project["id"]}
    )


def test_a_slug_that_looks_like_an_id_is_refused(sqlite_api):
    sqlite_api.error(
        "POST",
        "/api/projects/",
        422,
        "VALIDATION_ERROR",
        json={"name": "x", "slug": "123e4567-e89b-12d3-a456-426614174000"},
    )


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "page_size=101",
        "page=abc",
        "sort=nonsense",
        "order=sideways",
        "status=sleeping",
        "priority=7",
        "created_after=yesterday",
        "created_after=2025-01-01T00:00:00",
        "colour=blue",
        "min_position=-1",
        'search="unbalanced',
    ],
)
def test_bad_query_parameters_are_422(sqlite_api, query):
    sqlite_api.error("GET", f"/api/tasks/?{query}", 422, "VALIDATION_ERROR")


def test_bad_if_match_is_422(sqlite_api):
    task = sqlite_api.task(sqlite_api.project()["id"])
    sqlite_api.error(
        "PATCH",
        f"/api/tasks/{task['id']}",
        422,
        "VALIDATION_ERROR",
        json={"title": "y"},
        headers={"If-Match": "yesterday"},
    )


def test_unknown_ids_are_404_with_the_kind_in_the_code(sqlite_api):
    sqlite_api.error(
        "GET", "/api/tasks/00000000-0000-0000-0000-000000000000", 404, "TASK_NOT_FOUND"
    )
    sqlite_api.error("GET", "/api/tasks/no-such-slug", 404, "TASK_NOT_FOUND")
    sqlite_api.error("GET", "/api/projects/no-such-slug", 404, "PROJECT_NOT_FOUND")
    sqlite_api.error(
        "POST", "/api/tasks/", 404, "PROJECT_NOT_FOUND", json={"title": "x", "project_id": "nope"}
    )


def test_a_task_id_is_not_a_project_id(sqlite_api):
    task = sqlite_api.task(sqlite_api.project()["id"])
    sqlite_api.error("GET", f"/api/projects/{task['id']}", 404, "PROJECT_NOT_FOUND")
    sqlite_api.error(
        "POST",
        "/api/tasks/",
        404,
        "PROJECT_NOT_FOUND",
        json={"title": "x", "project_id": task["id"]},
    )


def test_a_failed_request_in_the_middle_of_work_leaves_nothing_half_written(sqlite_api):
    project = sqlite_api.project()
    sqlite_api.task(project["id"], slug="taken")
    before = sqlite_api.position()
    # the task would be valid; its slug is not: neither the task nor a claim may be stored
    sqlite_api.error(
        "POST",
        "/api/tasks/",
        409,
        "RESOURCE_ALREADY_EXISTS",
        json={"title": "y", "project_id": project["id"], "slug": "taken"},
    )
    assert sqlite_api.position() == before


def test_the_request_id_is_echoed(sqlite_api):
    response = sqlite_api.get("/api/health/", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["meta"]["request_id"] == "abc-123"
