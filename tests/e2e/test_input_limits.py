"""The input limits (application/limits.py) at the edge: every kind of bad input is answered 4xx in
the envelope with its code and the field, stores nothing, and leaves the connection usable."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from application.limits import MAX_DEPTH, MAX_ITEMS, MAX_STRING_CHARS
from tests.e2e.conftest import ADMIN_KEY, Api, make_settings
from tests.e2e.execution_support import execute, running_api, running_settings, wait_status
from tests.e2e.test_remote_worker import live_server
from tests.e2e.test_users_api import bearer, signed_in_user
from tests.e2e.test_websocket import connected

JSON = {"content-type": "application/json"}
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def refused(
    api: Api, body: bytes | str, code: str, field: str, path: str = "/api/tasks/"
) -> dict[str, Any]:
    """POSTs the raw body: 422 with ``code`` and ``field``, nothing stored, and the client's next
    request is served."""
    before = api.position()
    error = api.error("POST", path, 422, code, content=body, headers=JSON)
    assert error["details"]["field"] == field, error
    assert api.position() == before
    assert api.get("/api/tasks/").status_code == 200
    return error


def task_body(project_id: str, **fields: Any) -> dict[str, Any]:
    return {"title": "Add login", "project_id": project_id, **fields}


def with_metadata(project_id: str, metadata: str) -> str:
    """A task body whose metadata is the JSON text ``metadata``."""
    return f'{{"title": "x", "project_id": "{project_id}", "metadata": {metadata}}}'


def task_count(api: Api) -> int:
    position = api.position()
    return int(api.ok("GET", f"/api/tasks/?min_position={position}")["data"]["total"])


# ---- depth -------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [MAX_DEPTH - 1, 500, 964, 965, 5_000, 100_000])
def test_json_nested_deeper_than_64_levels_is_refused_and_stores_nothing(sqlite_api, levels):
    project = sqlite_api.project()
    # the body is level 1, metadata level 2: its value's arrays make the body one level too deep
    body = with_metadata(project["id"], f'{{"a": {nested(levels)}}}')
    error = refused(sqlite_api, body, "VALIDATION_INVALID_FORMAT", "$.metadata.a" + "[0]" * 62)
    assert error["details"]["max_depth"] == MAX_DEPTH


def test_json_nested_exactly_64_levels_is_accepted(sqlite_api):
    project = sqlite_api.project()
    body = with_metadata(project["id"], f'{{"a": {nested(62)}}}')
    response = sqlite_api.post("/api/tasks/", content=body, headers=JSON)
    assert response.status_code == 201, response.text


def test_brackets_inside_strings_do_not_count_as_depth(sqlite_api):
    project = sqlite_api.project()
    tricky = '\\"[{' * 200 + "\\\\" + "[" * 100
    body = f'{{"title": "x", "project_id": "{project["id"]}", "description": "{tricky}"}}'
    response = sqlite_api.post("/api/tasks/", content=body, headers=JSON)
    assert response.status_code == 201, response.text


def test_deep_json_is_refused_by_every_body_even_a_free_form_one(sqlite_api):
    token = signed_in_user(sqlite_api, "ann")
    before = sqlite_api.position()
    headers = {**bearer(token), **JSON}
    response = sqlite_api.put("/api/users/preferences", content=nested(2_000), headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "VALIDATION_INVALID_FORMAT"
    assert response.json()["error"]["details"]["field"] == "$" + "[0]" * MAX_DEPTH
    assert sqlite_api.position() == before


def test_deep_json_sent_to_login_is_refused_by_the_route_not_the_rate_limiter(sqlite_api):
    body = '{"username": "ann", "password": "x", "extra": ' + nested(3_000) + "}"
    error = sqlite_api.error(
        "POST", "/api/auth/login", 422, "VALIDATION_INVALID_FORMAT", content=body, headers=JSON
    )
    assert error["details"]["field"].startswith("$.extra[0]")


class KeptAlive:
    """One HTTP/1.1 connection to a real uvicorn server, signed in as an admin."""

    def __init__(self, base: str) -> None:
        self.connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=30)
        self.headers = dict(JSON)
        _, minted = self.exchange(
            "POST",
            "/api/auth/token",
            b'{"team_id": "default", "role": "admin"}',
            {"X-Admin-Key": ADMIN_KEY},
        )
        self.headers["Authorization"] = f"Bearer {minted['data']['access_token']}"

    def exchange(
        self, method: str, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        sent = {**self.headers, **(headers or {})}
        self.connection.request(method, path, body=body, headers=sent)
        response = self.connection.getresponse()
        answer = json.loads(response.read())
        assert not response.will_close, response.getheaders()
        return response.status, answer


@pytest.fixture
def live(tmp_path: Path) -> Iterator[KeptAlive]:
    with live_server(make_settings(tmp_path, None)) as (base, _):
        kept = KeptAlive(base)
        yield kept
        kept.connection.close()


def test_deep_json_leaves_the_kept_alive_connection_open(live):
    socket = live.connection.sock
    body = b'{"name": "deep", "settings": {"a": ' + nested(2_000).encode() + b"}}"
    status, answer = live.exchange("POST", "/api/projects/", body)
    assert status == 422 and answer["error"]["code"] == "VALIDATION_INVALID_FORMAT", answer
    status, answer = live.exchange("POST", "/api/projects/", b'{"name": "next"}')
    assert status == 201, answer
    assert live.connection.sock is socket  # the same connection served both


# ---- characters no store accepts ---------------------------------------------------------------


def test_nul_in_a_title_is_refused_on_every_store(api):
    project = api.project()
    count = task_count(api)
    body = json.dumps(task_body(project["id"], title="a\x00b"))
    error = refused(api, body, "VALIDATION_INVALID_FORMAT", "$.title")
    assert "NUL" in error["message"]
    assert task_count(api) == count  # and the read model follows the log: nothing poisoned it


def test_nul_in_a_metadata_key_is_refused_on_every_store(api):
    project = api.project()
    count = task_count(api)
    body = json.dumps(task_body(project["id"], metadata={"ok": 1, "bad\x00key": 1}))
    refused(api, body, "VALIDATION_INVALID_FORMAT", '$.metadata["bad\\u0000key"]')
    assert task_count(api) == count


def test_nul_deep_in_metadata_or_in_a_project_description_is_refused(api):
    project = api.project()
    body = json.dumps(task_body(project["id"], metadata={"a": [1, {"b": "x\x00"}]}))
    refused(api, body, "VALIDATION_INVALID_FORMAT", "$.metadata.a[1].b")
    body = json.dumps({"name": "x", "description": "\x00"})
    refused(api, body, "VALIDATION_INVALID_FORMAT", "$.description", "/api/projects/")


def test_an_escaped_backslash_before_u0000_is_text_not_nul(sqlite_api):
    project = sqlite_api.project()
    body = json.dumps(task_body(project["id"], title="C:\\u0000"))
    response = sqlite_api.post("/api/tasks/", content=body, headers=JSON)
    assert response.status_code == 201, response.text
    assert response.json()["data"]["title"] == "C:\\u0000"


def test_a_lone_surrogate_is_refused_as_malformed_json(sqlite_api):
    project = sqlite_api.project()
    body = f'{{"project_id": "{project["id"]}", "title": "a\\ud800b"}}'
    refused(sqlite_api, body, "VALIDATION_INVALID_FORMAT", "$.title")


# ---- numbers, sizes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "field"),
    [
        (str(INT64_MAX + 1), "$.metadata.n"),
        (str(INT64_MIN - 1), "$.metadata.n"),
        ("1" + "0" * 5_000, "$.metadata.n"),
    ],
)
def test_an_integer_outside_64_bits_is_refused(sqlite_api, number, field):
    project = sqlite_api.project()
    body = with_metadata(project["id"], f'{{"n": {number}}}')
    refused(sqlite_api, body, "VALIDATION_ERROR", field)


def test_integers_at_the_64_bit_bounds_are_accepted(sqlite_api):
    project = sqlite_api.project()
    metadata = {"high": INT64_MAX, "low": INT64_MIN}
    task = sqlite_api.task(project["id"], metadata=metadata)
    assert task["metadata"] == metadata


def test_a_huge_integer_in_a_typed_field_without_an_upper_bound_is_refused(sqlite_api):
    body = json.dumps({"name": "x", "resource_limits": {"max_tasks": 10**30}})
    refused(sqlite_api, body, "VALIDATION_ERROR", "$.resource_limits.max_tasks", "/api/projects/")


def test_an_object_with_more_than_1000_keys_is_refused(sqlite_api):
    project = sqlite_api.project()
    metadata = {f"k{n}": n for n in range(MAX_ITEMS + 1)}
    body = json.dumps(task_body(project["id"], metadata=metadata))
    error = refused(sqlite_api, body, "VALIDATION_VALUE_TOO_LONG", "$.metadata")
    assert error["details"]["max_items"] == MAX_ITEMS
    metadata.pop("k0")
    assert sqlite_api.task(project["id"], metadata=metadata)["metadata"] == metadata


def test_an_array_with_more_than_1000_items_is_refused(sqlite_api):
    project = sqlite_api.project()
    body = json.dumps(task_body(project["id"], metadata={"list": [0] * (MAX_ITEMS + 1)}))
    refused(sqlite_api, body, "VALIDATION_VALUE_TOO_LONG", "$.metadata.list")


def test_a_metadata_string_longer_than_the_limit_is_refused(sqlite_api):
    project = sqlite_api.project()
    metadata = {"notes": ["short", "x" * (MAX_STRING_CHARS + 1)]}
    body = json.dumps(task_body(project["id"], metadata=metadata))
    error = refused(sqlite_api, body, "VALIDATION_VALUE_TOO_LONG", "$.metadata.notes[1]")
    assert error["details"]["max_length"] == MAX_STRING_CHARS
    metadata["notes"][1] = "x" * MAX_STRING_CHARS
    assert sqlite_api.task(project["id"], metadata=metadata)["metadata"] == metadata


# ---- headers and query parameters --------------------------------------------------------------


@pytest.mark.parametrize("value", [b"1" * 5_000, b"9" * 19, "²".encode("latin-1"), b"1_0"])
def test_an_if_match_that_is_not_a_small_version_number_is_422(sqlite_api, value):
    project = sqlite_api.project()
    before = sqlite_api.position()
    error = sqlite_api.error(
        "PATCH",
        f"/api/projects/{project['id']}",
        422,
        "VALIDATION_ERROR",
        json={"name": "y"},
        headers={"If-Match": value},
    )
    assert error["details"]["field"] == "If-Match"
    assert sqlite_api.position() == before


@pytest.mark.parametrize("value", ["1" * 5_000, "%C2%B2", "%D9%A3"])
def test_a_min_position_that_is_not_a_small_ascii_number_is_422(sqlite_api, value):
    error = sqlite_api.error("GET", f"/api/tasks/?min_position={value}", 422, "VALIDATION_ERROR")
    assert error["details"]["field"] == "min_position"


@pytest.mark.parametrize("query", ["page=" + "1" * 5_000, "page_size=%C2%B2", "offset=1_0"])
def test_paging_numbers_are_small_ascii_integers(sqlite_api, query):
    error = sqlite_api.error("GET", f"/api/tasks/?{query}", 422, "VALIDATION_ERROR")
    assert error["details"]["field"] == query.partition("=")[0]


# ---- media types -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "media_type",
    [
        "APPLICATION/JSON",
        "application/json; charset=UTF-8",
        "Application/Json ; charset=utf-8",
        "application/merge-patch+json",
        "application/vnd.taskwarden.v1+json",
    ],
)
def test_json_media_types_are_accepted_whatever_their_case_and_parameters(sqlite_api, media_type):
    response = sqlite_api.post(
        "/api/projects/", content=b'{"name": "x"}', headers={"content-type": media_type}
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "media_type",
    ["text/plain; json", "text/json", "application/jsonp", "application/json-seq", "json", ""],
)
def test_other_media_types_are_415_and_store_nothing(sqlite_api, media_type):
    before = sqlite_api.position()
    error = sqlite_api.error(
        "POST",
        "/api/projects/",
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        content=b'{"name": "x"}',
        headers={"content-type": media_type},
    )
    assert error["details"]["field"] == "Content-Type"
    assert sqlite_api.position() == before


# ---- WebSocket ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code", "field"),
    [
        ('{"type": "ping", "timestamp": ' + nested(2_000) + "}", "VALIDATION_INVALID_FORMAT", None),
        ('{"type": "ping", "id": "a\\u0000"}', "VALIDATION_INVALID_FORMAT", "$.id"),
        ('{"type": "ping", "timestamp": 1' + "0" * 30 + "}", "VALIDATION_ERROR", "$.timestamp"),
        ('{"type": "ping", "timestamp": "\\udc00"}', "VALIDATION_INVALID_FORMAT", "$.timestamp"),
    ],
)
def test_a_websocket_message_past_a_limit_is_answered_and_the_socket_lives_on(
    sqlite_api, raw, code, field
):
    with connected(sqlite_api) as socket:
        socket.session.send_text(raw)
        answer = socket.receive()
        assert answer["type"] == "error" and answer["data"]["code"] == code, answer
        expected = field or "$.timestamp" + "[0]" * (MAX_DEPTH - 1)
        assert answer["data"]["details"]["field"] == expected, answer
        assert socket.ask(type="ping")["type"] == "pong"


# ---- the OpenAPI document ----------------------------------------------------------------------


def test_the_openapi_document_states_the_limits_and_the_body_statuses(sqlite_api):
    spec = sqlite_api.get("/openapi.json").json()
    limits = spec["info"]["x-input-limits"]
    assert (limits["max_depth"], limits["max_items"]) == (MAX_DEPTH, MAX_ITEMS)
    assert "U+0000" in spec["info"]["description"]
    schemas = spec["components"]["schemas"]
    metadata = schemas["CreateTask"]["properties"]["metadata"]
    assert metadata["maxProperties"] == MAX_ITEMS and "64 levels" in metadata["description"]
    assert schemas["CreateTask"]["properties"]["title"]["maxLength"] == 500
    max_tasks = schemas["ResourceLimits"]["properties"]["max_tasks"]["anyOf"][0]
    assert max_tasks["maximum"] == INT64_MAX
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            statuses = operation["responses"].keys()
            has_body = "requestBody" in operation
            assert ("413" in statuses, "415" in statuses) == (has_body, has_body), (method, path)


def test_the_openapi_document_links_created_objects_to_their_operations(sqlite_api):
    paths = sqlite_api.get("/openapi.json").json()["paths"]
    project = paths["/api/projects/"]["post"]["responses"]["201"]["links"]
    assert project["GetProjects"] == {
        "operationId": "get_api_projects_project_id",
        "parameters": {"path.project_id": "$response.body#/data/id"},
    }
    assert project["PatchProjects"]["parameters"]["header.If-Match"] == "$response.header.ETag"
    assert project["PostTasks"]["requestBody"]["project_id"] == "$response.body#/data/id"
    task = paths["/api/tasks/"]["post"]["responses"]["201"]["links"]
    assert {"GetTasksHistory", "PostTasksExecute", "PostTasksCancel"} <= task.keys()
    submitted = paths["/api/tasks/submit"]["post"]["responses"]["202"]["links"]
    assert submitted["GetTasks"]["parameters"] == {"path.task_id": "$response.body#/data/task_id"}


# ---- what an agent writes ----------------------------------------------------------------------

NUL_AGENT = ["{python}", "-c", "import sys; sys.stdout.write('before\\x00after\\n')"]


@pytest.fixture
def running(tmp_path: Path, database_url: str | None) -> Iterator[Api]:
    agents = tmp_path / "agents.json"
    agents.write_text(json.dumps({"nul": {"argv": NUL_AGENT, "adapter": "text"}}))
    settings = running_settings(tmp_path, database_url, agents_file=agents)
    yield from running_api(settings)


def test_nul_in_an_agents_output_is_stored_as_u_fffd_on_every_store(running):
    project = running.project()
    task = running.task(project["id"])
    execute(running, task["id"], agent="nul")
    wait_status(running, task["id"], "completed")
    services = running.role.services
    assert services.runner.wait_for(services.ledger.max_position(), 30.0)  # nothing stuck
    rows = services.read_model.output("default", task["id"], 0, 100)
    assert "before\ufffdafter\n" in "".join(r.text for r in rows)
