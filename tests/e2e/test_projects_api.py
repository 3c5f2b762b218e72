"""Projects over HTTP: CRUD, statistics, activity, tasks of a project, clone, archive."""

from __future__ import annotations


def test_project_crud(api):
    project = api.project(
        description="shop",
        slug="shop",
        settings={"theme": "dark"},
        resource_limits={"max_concurrent_tasks": 5, "storage_limit": "1GB"},
    )
    assert project["status"] == "active"
    assert project["resource_limits"] == {"max_concurrent_tasks": 5, "storage_limit": "1GB"}
    updated = api.ok("PUT", "/api/projects/shop", json={"name": "Shop v2", "settings": {}})["data"]
    assert updated["name"] == "Shop v2" and updated["settings"] == {}
    renamed = api.ok("PATCH", f"/api/projects/{project['id']}", json={"slug": "store"})["data"]
    assert renamed["slug"] == "store"
    api.error("GET", "/api/projects/shop", 404, "PROJECT_NOT_FOUND")
    api.ok("DELETE", "/api/projects/store")
    api.error("GET", f"/api/projects/{project['id']}", 404, "PROJECT_NOT_FOUND")


def test_project_slugs_are_unique_within_the_team(api):
    api.project(slug="one")
    api.error(
        "POST",
        "/api/projects/",
        409,
        "RESOURCE_ALREADY_EXISTS",
        json={"name": "Again", "slug": "one"},
    )


def test_project_listing_with_statistics(api):
    first = api.project(name="Alpha")
    api.project(name="Beta", status="archived")
    done = api.task(first["id"])
    api.task(first["id"])
    written = api.ok("PATCH", f"/api/tasks/{done['id']}", json={"status": "completed"})
    pos = written["meta"]["position"]
    listing = api.ok("GET", f"/api/projects/?min_position={pos}&sort=name&order=asc")["data"]
    assert [p["name"] for p in listing["items"]] == ["Alpha", "Beta"]
    stats = listing["items"][0]["statistics"]
    assert stats["total_tasks"] == 2 and stats["completed_tasks"] == 1
    assert stats["completion_rate"] == 0.5
    active = api.ok("GET", f"/api/projects/?min_position={pos}&status=active")["data"]
    assert [p["name"] for p in active["items"]] == ["Alpha"]
    found = api.ok("GET", f"/api/projects/?min_position={pos}&search=beta")["data"]
    assert [p["name"] for p in found["items"]] == ["Beta"]


def test_project_detail_has_statistics_and_recent_activity(api):
    project = api.project()
    task = api.task(project["id"], title="Setup")
    pos = api.ok("POST", f"/api/tasks/{task['id']}/execute", 202)["meta"]["position"]
    detail = api.ok("GET", f"/api/projects/{project['id']}?min_position={pos}")["data"]
    assert detail["statistics"]["queued_tasks"] == 1
    actions = [a["action"] for a in detail["recent_activity"]]
    assert "task.execution_requested" in actions and "task.created" in actions
    assert detail["recent_activity"][0]["task_title"] == "Setup"


def test_tasks_of_a_project(api):
    project = api.project()
    other = api.project(name="Other")
    api.task(project["id"], title="mine")
    api.task(other["id"], title="theirs")
    pos = api.position()
    page = api.ok("GET", f"/api/projects/{project['id']}/tasks?min_position={pos}")["data"]
    assert [t["title"] for t in page["items"]] == ["mine"]


def test_an_archived_project_refuses_new_and_executed_tasks(api):
    project = api.project()
    task = api.task(project["id"])
    api.ok("PATCH", f"/api/projects/{project['id']}", json={"status": "archived"})
    api.error(
        "POST",
        "/api/tasks/",
        409,
        "PROJECT_ARCHIVED",
        json={"title": "x", "project_id": project["id"]},
    )
    api.error("POST", f"/api/tasks/{task['id']}/execute", 409, "PROJECT_ARCHIVED")
    api.ok("PATCH", f"/api/projects/{project['id']}", json={"status": "active"})
    api.ok("POST", f"/api/tasks/{task['id']}/execute", 202)


def test_clone_with_and_without_tasks_and_settings(api):
    source = api.project(settings={"theme": "dark"}, resource_limits={"max_tasks": 9})
    first = api.task(source["id"], title="first")
    api.task(source["id"], title="second", dependencies=[first["id"]])
    bare = api.ok(
        "POST",
        f"/api/projects/{source['id']}/clone",
        201,
        json={"name": "Bare", "include_settings": False},
    )["data"]
    assert bare["settings"] == {} and bare["cloned_task_count"] == 0
    assert bare["cloned_from"] == source["id"]
    full = api.ok(
        "POST",
        f"/api/projects/{source['id']}/clone",
        201,
        json={"name": "Full", "include_tasks": True},
    )
    data = full["data"]
    assert data["settings"] == {"theme": "dark"} and data["cloned_task_count"] == 2
    page = api.ok(
        "GET",
        f"/api/projects/{data['id']}/tasks?min_position={full['meta']['position']}"
        "&sort=title&order=asc",
    )["data"]
    copies = {t["title"]: t for t in page["items"]}
    assert set(copies) == {"first", "second"}
    assert copies["second"]["dependencies"] == [copies["first"]["id"]]
    assert all(t["status"] == "pending" for t in page["items"])


def test_the_tasks_of_a_deleted_project_leave_the_listings(api):
    kept = api.project(name="Kept")
    gone = api.project(name="Gone")
    api.task(kept["id"], title="stays")
    api.task(gone["id"], title="leaves")
    position = api.ok("DELETE", f"/api/projects/{gone['id']}")["meta"]["position"]
    page = api.ok("GET", f"/api/tasks/?min_position={position}")["data"]
    assert [t["title"] for t in page["items"]] == ["stays"] and page["total"] == 1
