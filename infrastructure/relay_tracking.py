"""Named positions in table ``tw_relay``: the relay's (``relay``) and those of the in-process bus's
durable consumers (``bus:<name>``).

Postgres: in the event database. Embedded: in the read model's SQLite file, beside ``tw_tracking``
but outside the read model's schema, so ``taskwarden projections --rebuild`` leaves it alone (a
relay sent back to 0 would publish the whole log again). The table is created by ``taskwarden
migrate``. A position never moves backwards, so two relays racing cannot rewind it.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import psycopg

from infrastructure.settings import Settings
from infrastructure.views import SQLITE_FILE

TABLE = "tw_relay"
SELECT = f"SELECT position FROM {TABLE} WHERE name = %s"  # noqa: S608 - our own name
BUSY_TIMEOUT_SECONDS = 30.0


class SqliteTracking:
    def __init__(self, path: Path) -> None:
        self._path = path

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)

    def migrate(self) -> None:
        conn = self._connect()
        try:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} "
                "(name TEXT PRIMARY KEY, position INTEGER NOT NULL)"
            )
        finally:
            conn.close()

    def get(self, name: str) -> int | None:
        conn = self._connect()
        try:
            row = conn.execute(SELECT.replace("%s", "?"), (name,)).fetchone()
        finally:
            conn.close()
        return int(row[0]) if row else None

    def set(self, name: str, position: int) -> None:
        conn = self._connect()
        try:
            conn.execute(
                f"INSERT INTO {TABLE} (name, position) VALUES (?, ?) "  # noqa: S608
                "ON CONFLICT (name) DO UPDATE SET position = MAX(position, excluded.position)",
                (name, position),
            )
        finally:
            conn.close()

    def close(self) -> None:
        """Nothing held between calls."""


class PostgresTracking:
    """One connection, opened on first use and replaced after a failure."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None

    def _run(self, statement: str, params: tuple[object, ...]) -> tuple[Any, ...] | None:
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=5)
            try:
                return self._conn.execute(statement, params).fetchone()
            except psycopg.OperationalError:
                self._conn.close()
                self._conn = None
                raise

    def migrate(self) -> None:
        with psycopg.connect(self._url, autocommit=True) as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} "
                "(name TEXT PRIMARY KEY, position BIGINT NOT NULL)"
            )

    def get(self, name: str) -> int | None:
        row = self._run(SELECT, (name,))
        return int(row[0]) if row else None

    def set(self, name: str, position: int) -> None:
        self._run(
            f"INSERT INTO {TABLE} (name, position) VALUES (%s, %s) "  # noqa: S608
            "ON CONFLICT (name) DO UPDATE SET position = GREATEST("
            f"{TABLE}.position, excluded.position) RETURNING position",
            (name, position),
        )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def open_tracking(settings: Settings) -> SqliteTracking | PostgresTracking:
    """Opens, never migrates (``taskwarden migrate`` creates the table)."""
    if settings.uses_postgres:
        return PostgresTracking(settings.database_url or "")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteTracking(settings.data_dir / SQLITE_FILE)
