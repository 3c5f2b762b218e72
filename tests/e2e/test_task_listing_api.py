"""The task listings over HTTP on SQLite and Postgres: pages by cursor beside page numbers, the
count's exactness said in the page, and what a cursor that is not one answers."""

from __future__ import annotations

from typing import Any

import pytest

from projections.cursor import encode_cursor
from projections.rows import Keyset

FIELDS = {
    "items",
    "total",
    "total_exact",
    "page",
    "page_size",
    "pages",
    "has_next",
    "has_previous",
    "next_cursor",
}


def walk(api: Any, path: str, between: Any = None) -> list[dict[str, Any]]:
    """Every page of ``path`` by cursor, calling ``between()`` after each."""
    items: list[dict[str, Any]] = []
    page = api.ok("GET", path)["data"]
    while True:
        assert set(page) == FIELDS
        items += page["items"]
        if between is not None:
            between()
        if page["next_cursor"] is None:
            assert not page["has_next"]
            return items
        page = api.ok("GET", path + f"&cursor={page['next_cursor']}")["data"]
        assert page["page"] is None and page["has_previous"]


def test_a_project_listing_walked_by_cursor_meets_each_task_once_while_tasks_are_created(api):
    project = api.project()
    names = iter(f"task {n:02d}" for n in (7, 3, 11, 1, 9, 5, 12, 0, 8, 4, 10, 2, 6))
    first = {api.task(project["id"], title=next(names))["id"] for _ in range(7)}

    def create() -> None:
        api.task(project["id"], title=next(names, "zz"))

    pos = api.position()
    path = f"/api/projects/{project['id']}/tasks?sort=title&order=asc&page_size=2"
    walked = walk(api, path + f"&min_position={pos}", between=create)
    ids = [t["id"] for t in walked]
    assert len(ids) == len(set(ids)) and first <= set(ids)
    titles = [t["title"] for t in walked]
    assert titles == sorted(titles)


@pytest.mark.parametrize("listing", ["/api/tasks/", "/api/jobs"])
def test_team_listings_page_by_cursor_with_their_filters(api, listing):
    project = api.project()
    made = [
        api.task(project["id"], title=f"t{i}", priority="high" if i % 2 else "low")
        for i in range(5)
    ]
    path = f"{listing}?min_position={api.position()}&priority=high&sort=priority&page_size=1"
    walked = walk(api, path)
    assert {t["id"] for t in walked} == {t["id"] for t in made if t["priority"] == "high"}
    numbered = api.ok("GET", path + "&page_size=100")
    assert numbered["data"]["total"] == 2 and numbered["data"]["total_exact"] is True
    assert [t["id"] for t in numbered["data"]["items"]] == [t["id"] for t in walked]


def test_a_page_number_listing_says_where_the_next_page_starts(api):
    project = api.project()
    for i in range(3):
        api.task(project["id"], title=f"t{i}")
    path = f"/api/tasks/?min_position={api.position()}&page_size=2"
    first = api.ok("GET", path)["data"]
    assert first["page"] == 1 and first["has_next"] and first["next_cursor"]
    by_cursor = api.ok("GET", path + f"&cursor={first['next_cursor']}")["data"]
    by_number = api.ok("GET", path + "&page=2")["data"]
    assert by_cursor["items"] == by_number["items"] and len(by_number["items"]) == 1
    assert by_number["next_cursor"] is None and by_cursor["next_cursor"] is None


def test_past_the_count_bound_the_total_says_it_is_not_exact(api):
    project = api.project()
    for i in range(4):
        api.task(project["id"], title=f"t{i}")
    api.role.services.read_model.count_bound = 2
    page = api.ok("GET", f"/api/tasks/?min_position={api.position()}&page_size=3")["data"]
    assert page["total_exact"] is False and page["total"] >= 3
    assert page["has_next"] and len(page["items"]) == 3


OTHER_SORT = encode_cursor("title", "asc", Keyset(key="a", id="b"))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("cursor=bm90IGEgY3Vyc29y", "cursor is not one this listing issued"),
        ("cursor=%21%21", "cursor is not one this listing issued"),
        (f"cursor={OTHER_SORT}&sort=priority", "cursor was issued for sort=title and order=asc"),
        (f"cursor={OTHER_SORT}&order=desc", "cursor was issued for sort=title and order=asc"),
        (f"cursor={OTHER_SORT}&page=2", "give cursor or page (offset), not both"),
    ],
)
def test_a_cursor_that_is_not_one_is_a_validation_error(api, query, message):
    project = api.project()
    for path in ("/api/tasks/", f"/api/projects/{project['id']}/tasks"):
        error = api.error("GET", f"{path}?{query}", 422, "VALIDATION_ERROR")
        assert error["message"] == message and error["details"]["field"] == "cursor"


def test_a_cursor_names_its_own_sort_when_the_request_does_not(api):
    project = api.project()
    for title in ("b", "a", "c"):
        api.task(project["id"], title=title)
    path = f"/api/tasks/?min_position={api.position()}&page_size=1"
    first = api.ok("GET", path + "&sort=title&order=asc")["data"]
    second = api.ok("GET", path + f"&cursor={first['next_cursor']}")["data"]
    assert [first["items"][0]["title"], second["items"][0]["title"]] == ["a", "b"]


def test_the_board_as_of_a_moment_pages_by_number_only(api):
    project = api.project()
    error = api.error(
        "GET",
        f"/api/projects/{project['id']}/tasks?as_of=1&cursor={OTHER_SORT}",
        422,
        "VALIDATION_ERROR",
    )
    assert error["details"]["field"] == "cursor"
