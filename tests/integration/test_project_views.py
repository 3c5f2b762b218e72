"""The project read model on real SQLite and real Postgres: listing, statistics, activity, teams."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from projections.rows import ProjectQuery, ProjectStats, TaskQuery
from tests.integration.views_scenario import BACKENDS, ids, scenario, titles
from tests.integration.views_world import all_tasks


@pytest.fixture(scope="module", params=BACKENDS)
def s(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """One scenario per backend, built through the real handlers, shared by read-only tests."""
    yield from scenario(request, tmp_path_factory)


# ---- projects ----------------------------------------------------------------------------------


def projects(s, team="team-a", **query) -> list[str]:
    return [p.name for p in s.rm.list_projects(team, ProjectQuery(**query)).items]


def test_projects_list_live_projects_only(s):
    assert sorted(projects(s)) == ["Backend platform", "Research notes", "Website redesign"]


@pytest.mark.parametrize("sort", ["name", "created_at", "updated_at"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_projects_sort_by_any_allowed_key_then_by_id(s, sort, order):
    rows = s.rm.list_projects("team-a", ProjectQuery(sort=sort, order=order)).items
    expected = sorted(rows, key=lambda p: (getattr(p, sort), p.id), reverse=order == "desc")
    assert [p.id for p in rows] == [p.id for p in expected]
    if sort == "created_at" and order == "desc":
        assert rows == s.rm.list_projects("team-a", ProjectQuery()).items


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": ["archived"]}, ["Website redesign"]),
        (
            {"status": ["active"], "sort": "name", "order": "asc"},
            ["Backend platform", "Research notes"],
        ),
        ({"created_by": "user-2"}, ["Research notes"]),
        ({"search": "backend"}, ["Backend platform"]),
        ({"search": "marketing"}, ["Website redesign"]),
        ({"search": "title:website"}, ["Website redesign"]),
        ({"search": "description:website"}, []),
        ({"search": "tag:backend"}, []),
        (
            {"search": "platform OR notes", "sort": "name", "order": "desc"},
            ["Research notes", "Backend platform"],
        ),
    ],
)
def test_project_filters_search_and_sort(s, query, expected):
    assert projects(s, **query) == expected


def test_project_pages(s):
    page = s.rm.list_projects("team-a", ProjectQuery(sort="name", order="asc", page=2, page_size=2))
    assert (page.total, page.pages, page.has_previous, page.has_next) == (3, 2, True, False)
    assert [p.name for p in page.items] == ["Website redesign"]


def test_each_listed_project_carries_its_statistics(s):
    listed = {p.id: p.statistics for p in s.rm.list_projects("team-a", ProjectQuery()).items}
    assert listed[s.p1] == s.rm.project_statistics("team-a", s.p1)
    assert listed[s.p3] == ProjectStats()


def test_statistics_count_live_tasks_by_status(s):
    stats = s.rm.project_statistics("team-a", s.p1)
    duration = s.world.truth(s.t1)["actual_duration"]
    assert stats.total_tasks == 4
    assert (stats.completed_tasks, stats.queued_tasks, stats.pending_tasks) == (1, 1, 1)
    assert stats.cancelled_tasks == 1
    assert stats.completion_rate == 0.25
    assert stats.average_task_duration == pytest.approx(duration, abs=0.002)
    other = s.rm.project_statistics("team-a", s.p2)
    assert (other.total_tasks, other.running_tasks, other.failed_tasks) == (2, 1, 1)
    assert (other.completion_rate, other.average_task_duration) == (0.0, None)


def test_recent_activity_is_newest_first_and_limited(s):
    activity = s.rm.recent_activity("team-a", s.p1, limit=100)
    assert [a.position for a in activity] == sorted((a.position for a in activity), reverse=True)
    assert activity[-1].action == "project.created"
    assert {a.action for a in activity} >= {
        "task.created",
        "task.execution_requested",
        "task.execution_finished",
        "task.cancelled",
        "task.updated",
        "task.tags_removed",
    }
    assert all(a.actor == "user-1" for a in activity)
    assert len(s.rm.recent_activity("team-a", s.p1, limit=3)) == 3
    titled = {a.task_id: a.task_title for a in activity if a.action == "task.tags_removed"}
    assert titled == {s.t2: "Fix login page layout"}


def test_a_deleted_task_leaves_no_activity(s):
    activity = s.rm.recent_activity("team-a", s.p1, limit=100)
    assert s.t5 not in {a.task_id for a in activity}


def test_task_ids_of_a_project_are_its_live_tasks(s):
    assert set(s.rm.task_ids_of_project("team-a", s.p1)) == ids(s, "t1", "t2", "t3", "t4")


# ---- teams -------------------------------------------------------------------------------------


def test_another_team_sees_nothing_of_team_a(s):
    assert {r.id for r in all_tasks(s.rm, "team-b")} == {s.b1}
    assert {r.id for r in all_tasks(s.rm, "team-b", search="authentication")} == {s.b1}
    assert projects(s, "team-b") == ["Backend platform"]
    assert s.rm.project_statistics("team-b", s.p1) == ProjectStats()
    assert s.rm.recent_activity("team-b", s.p1) == []
    assert s.rm.task_ids_of_project("team-b", s.p1) == []
    assert titles(s, project_id=s.q1) == set()


def test_a_team_that_never_wrote_sees_empty_pages(s):
    assert s.rm.list_tasks("team-z", TaskQuery()).total == 0
    assert s.rm.list_projects("team-z", ProjectQuery()).total == 0
