"""A task's workspace over HTTP: tree, file and zip, by id and by seed 001's job slug."""

from __future__ import annotations

import base64
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from interfaces.http import routes_artifacts
from tests.e2e.conftest import Api, token

ROUTES = ("workspace/tree", "workspace/file?path=README.md", "workspace/download")
JOB_ROUTES = ("code/tree", "code/file?path=README.md", "download")


def executed(api: Api, slug: str | None = "login") -> dict[str, Any]:
    """A task whose execution was requested: it has an execution id, not yet a directory."""
    project = api.project()
    fields = {"slug": slug} if slug else {}
    task = api.task(project["id"], **fields)
    queued = api.ok("POST", f"/api/tasks/{task['id']}/execute", 202, json={})["data"]
    return {**task, "execution_id": queued["execution_id"]}


def workspace(api: Api, task: dict[str, Any]) -> Path:
    """What the runner leaves: ``<workspaces>/<task_id>/<execution_id>``."""
    root = api.client.app.state.settings.workspaces / task["id"] / task["execution_id"]
    (root / "src").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("url = https://token@example.com/repo.git")
    (root / "README.md").write_text("# Login\n")
    (root / "src" / "app.py").write_text("print('hi')\n")
    (root / "logo.png").write_bytes(b"\x89PNG\x00\x01\x02")
    (root / "passwd").symlink_to("/etc/passwd")
    return root


@pytest.fixture
def task(api: Api) -> dict[str, Any]:
    task = executed(api)
    workspace(api, task)
    return task


# ---- reading ----------------------------------------------------------------------------------

TREE = [
    {"path": "README.md", "type": "file", "size": 8},
    {"path": "logo.png", "type": "file", "size": 7},
    {"path": "src", "type": "dir", "size": 0},
    {"path": "src/app.py", "type": "file", "size": 12},
]


def test_the_tree_lists_the_workspace_without_git_or_links_out(api, task):
    data = api.ok("GET", f"/api/tasks/{task['id']}/workspace/tree")["data"]
    assert data == {
        "task_id": task["id"],
        "execution_id": task["execution_id"],
        "root": "",
        "entries": TREE,
        "truncated": False,
    }


def test_a_job_slug_reaches_the_same_workspace(api, task):
    by_slug = api.ok("GET", "/api/jobs/login/code/tree")["data"]
    assert by_slug["task_id"] == task["id"] and by_slug["entries"] == TREE
    file = api.ok("GET", "/api/jobs/login/code/file", params={"path": "src/app.py"})["data"]
    assert file["content"] == "print('hi')\n"
    assert api.ok("GET", "/api/tasks/login/workspace/tree")["data"]["entries"] == TREE


def test_the_tree_is_capped(api, task):
    data = api.ok("GET", "/api/jobs/login/code/tree", params={"max_entries": "2"})["data"]
    assert data["truncated"] is True and len(data["entries"]) == 2
    shallow = api.ok("GET", "/api/jobs/login/code/tree", params={"max_depth": "1"})["data"]
    assert shallow["truncated"] is True and "src/app.py" not in str(shallow["entries"])
    api.error("GET", "/api/jobs/login/code/tree", 422, "VALIDATION_ERROR", params={"max_depth": 0})


def test_a_text_file_is_utf8_and_a_binary_one_base64(api, task):
    text = api.ok("GET", f"/api/tasks/{task['id']}/workspace/file?path=README.md")["data"]
    assert text == {"path": "README.md", "size": 8, "encoding": "utf-8", "content": "# Login\n"}
    binary = api.ok("GET", "/api/jobs/login/code/file", params={"path": "./logo.png"})["data"]
    assert binary["path"] == "logo.png" and binary["encoding"] == "base64"
    assert base64.b64decode(binary["content"]) == b"\x89PNG\x00\x01\x02"


def test_the_download_is_a_zip_of_the_workspace_named_after_the_slug(api, task):
    for path in (f"/api/tasks/{task['id']}/workspace/download", "/api/jobs/login/download"):
        response = api.client.get(path)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/zip"
        assert response.headers["content-disposition"] == 'attachment; filename="login.zip"'
        assert "x-ratelimit-limit" in response.headers
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        assert sorted(archive.namelist()) == ["README.md", "logo.png", "src/", "src/app.py"]
        assert archive.read("src/app.py") == b"print('hi')\n"


def test_a_task_without_a_slug_downloads_under_its_id(api):
    task = executed(api, slug=None)
    workspace(api, task)
    response = api.client.get(f"/api/tasks/{task['id']}/workspace/download")
    assert response.headers["content-disposition"] == f'attachment; filename="{task["id"]}.zip"'


# ---- no workspace -----------------------------------------------------------------------------


def test_a_task_never_executed_has_no_workspace(api):
    task = api.task(api.project()["id"], slug="idle")
    for route in ROUTES:
        api.error("GET", f"/api/tasks/{task['id']}/{route}", 404, "WORKSPACE_NOT_FOUND")
    for route in JOB_ROUTES:
        api.error("GET", f"/api/jobs/idle/{route}", 404, "WORKSPACE_NOT_FOUND")


def test_an_execution_that_left_no_directory_has_no_workspace(api):
    task = executed(api)
    for route in ROUTES:
        error = api.error("GET", f"/api/tasks/{task['id']}/{route}", 404, "WORKSPACE_NOT_FOUND")
        assert error["details"] == {"task_id": task["id"]}


def test_a_missing_task_is_not_found(api):
    for route in JOB_ROUTES:
        api.error("GET", f"/api/jobs/nothing/{route}", 404, "TASK_NOT_FOUND")


# ---- who may read -----------------------------------------------------------------------------


def test_another_team_gets_404_as_for_a_missing_task(api, task):
    other = {"Authorization": f"Bearer {token(api.client, team='other-team')}"}
    for ref in (task["id"], "login"):
        for route in ROUTES:
            response = api.client.get(f"/api/tasks/{ref}/{route}", headers=other)
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == "TASK_NOT_FOUND"
            assert "Login" not in response.text
        for route in JOB_ROUTES:
            response = api.client.get(f"/api/jobs/{ref}/{route}", headers=other)
            assert response.json()["error"]["code"] == "TASK_NOT_FOUND"
    for path in ("../README.md", "/etc/passwd"):  # a bad path is not looked at first
        response = api.client.get("/api/jobs/login/code/file", params={"path": path}, headers=other)
        assert response.status_code == 404


def test_a_project_scoped_key_reaches_only_its_projects_workspaces(api, task):
    mine = executed(api, slug="scoped")
    workspace(api, mine)
    body = {"name": "ci", "project_id": mine["project_id"]}
    key = api.ok("POST", "/api/auth/api-keys", 201, json=body)["data"]["key"]
    scoped = {"Authorization": f"Bearer {key}"}
    assert api.client.get("/api/jobs/scoped/code/tree", headers=scoped).status_code == 200
    response = api.client.get("/api/jobs/login/code/tree", headers=scoped)
    assert response.status_code == 404 and response.json()["error"]["code"] == "TASK_NOT_FOUND"


def test_a_viewer_reads_the_workspace(api, task):
    viewer = {"Authorization": f"Bearer {token(api.client, role='viewer')}"}
    for route in ROUTES:
        response = api.client.get(f"/api/tasks/login/{route}", headers=viewer)
        assert response.status_code == 200, (route, response.text)


def test_without_credentials_every_workspace_route_answers_401(api, task):
    api.client.headers.pop("Authorization")
    for route in ROUTES:
        api.error("GET", f"/api/tasks/login/{route}", 401, "AUTH_TOKEN_MISSING")
    for route in JOB_ROUTES:
        api.error("GET", f"/api/jobs/login/{route}", 401, "AUTH_TOKEN_MISSING")


# ---- bad paths, large files -------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "path=../../../etc/passwd",
        "path=%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "path=/etc/passwd",
        "path=src/../../x",
        "path=README.md%00.png",
        "path=passwd",
        "path=src",
        "path=.git/config",
        "path=",
        "",
    ],
)
def test_a_bad_path_answers_422(sqlite_api, query):
    task = executed(sqlite_api)
    workspace(sqlite_api, task)
    url = f"/api/jobs/login/code/file?{query}"
    code = "VALIDATION_ERROR" if not query else "WORKSPACE_PATH_INVALID"
    error = sqlite_api.error("GET", url, 422, code)
    assert error["details"]["field"] == "path"
    assert "root:" not in str(error) and "token@" not in str(error)


def test_a_missing_file_is_not_found(api, task):
    api.error("GET", "/api/jobs/login/code/file?path=nope.py", 404, "WORKSPACE_FILE_NOT_FOUND")


def test_a_file_over_500_kb_answers_422_too_large(api, task):
    root = api.client.app.state.settings.workspaces / task["id"] / task["execution_id"]
    (root / "big.log").write_bytes(b"x" * 500_001)
    error = api.error(
        "GET", "/api/jobs/login/code/file?path=big.log", 422, "WORKSPACE_FILE_TOO_LARGE"
    )
    assert error["details"] == {"path": "big.log", "size": 500_001, "limit": 500_000}
    (root / "big.log").write_bytes(b"x" * 500_000)
    assert api.ok("GET", "/api/jobs/login/code/file?path=big.log")["data"]["size"] == 500_000


def test_a_workspace_over_the_zip_cap_answers_422_in_the_envelope(sqlite_api, monkeypatch):
    task = executed(sqlite_api)
    workspace(sqlite_api, task)
    monkeypatch.setattr(routes_artifacts, "ZIP_LIMIT", 10)
    error = sqlite_api.error("GET", "/api/jobs/login/download", 422, "WORKSPACE_TOO_LARGE")
    assert error["details"]["limit"] == 10


def test_unknown_query_parameters_are_refused(sqlite_api):
    sqlite_api.error("GET", "/api/jobs/login/download?include_git=true", 422, "VALIDATION_ERROR")
