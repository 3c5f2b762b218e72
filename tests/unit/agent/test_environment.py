"""The agent's environment keeps the basics and loses the server's secrets."""

from __future__ import annotations

import pytest

from infrastructure.agent.environment import agent_environment

SERVER = {
    "PATH": "/usr/bin",
    "HOME": "/home/tw",
    "LANG": "C.UTF-8",
    "TERM": "xterm",
    "TASKWARDEN_JWT_SECRET": "s",
    "TASKWARDEN_DATA_DIR": "/data",
    "DATABASE_URL": "postgresql://u:p@db/x",
    "PGPASSWORD": "p",
    "PGHOST": "db",
    "NATS_URL": "nats://x",
    "AWS_SECRET_ACCESS_KEY": "k",
    "GITHUB_TOKEN": "t",
    "github_token": "t",
    "SMTP_PASSWORD": "p",
    "SSH_PRIVATE_KEY": "k",
    "OPENAI_API_KEY": "k",
    "GOOGLE_APPLICATION_CREDENTIALS": "/c.json",
}


@pytest.mark.parametrize("name", [n for n in SERVER if n not in ("PATH", "HOME", "LANG", "TERM")])
def test_a_server_secret_is_removed(name: str) -> None:
    assert name not in agent_environment(SERVER, {})


def test_path_home_lang_and_the_like_are_kept() -> None:
    env = agent_environment(SERVER, {})
    assert env == {"PATH": "/usr/bin", "HOME": "/home/tw", "LANG": "C.UTF-8", "TERM": "xterm"}


def test_the_agent_specs_own_variables_pass_whatever_their_name() -> None:
    extra = {"ANTHROPIC_API_KEY": "operator-key", "TASKWARDEN_TASK_FILE": "/ws/task.json"}
    env = agent_environment(SERVER, extra)
    assert env["ANTHROPIC_API_KEY"] == "operator-key"
    assert env["TASKWARDEN_TASK_FILE"] == "/ws/task.json"
    assert "OPENAI_API_KEY" not in env


def test_extra_replaces_a_kept_variable() -> None:
    assert agent_environment(SERVER, {"HOME": "/ws"})["HOME"] == "/ws"


def test_the_base_mapping_is_not_changed() -> None:
    base = dict(SERVER)
    agent_environment(base, {"X": "1"})
    assert base == SERVER
