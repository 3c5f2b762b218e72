"""The eventsourcing environment for the ledger: SQLite in the data directory, Postgres, or this
process's memory (eventsourcing's POPO persistence: the same mapping of events to stored records,
kept in a list; nothing outlives the process)."""

from __future__ import annotations

import math
import sqlite3
from urllib.parse import parse_qs, unquote, urlparse

import psycopg

from application.ledger import SNAPSHOT_INTERVAL
from infrastructure.postgres_event_store import STORE_TIMEOUT
from infrastructure.settings import Settings

EVENTS_FILE = "events.sqlite3"
# each factory's recorder also writes the running digest of the log (infrastructure.audit_digests)
MEMORY_ENV = {"PERSISTENCE_MODULE": "infrastructure.audit_digests:DigestPOPOFactory"}


def ledger_env(settings: Settings, *, create_tables: bool) -> dict[str, str]:
    """Tables are created only by an explicit migrate step (or the embedded ``serve``); the
    snapshots' table with them whatever the interval, so that raising it needs no migration."""
    common = {
        "CREATE_TABLE": "y" if create_tables else "n",
        "IS_SNAPSHOTTING_ENABLED": "y" if create_tables or settings.snapshot_interval else "n",
        SNAPSHOT_INTERVAL: str(settings.snapshot_interval),
        "AGGREGATE_CACHE_MAXSIZE": str(settings.aggregate_cache_size),
    }
    if settings.event_store == "memory":
        return common | MEMORY_ENV
    if settings.uses_postgres:
        return common | postgres_env(
            settings.database_url or "", timeout=settings.database_timeout_seconds
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return common | {
        "PERSISTENCE_MODULE": "infrastructure.audit_digests:DigestSQLiteFactory",
        "SQLITE_DBNAME": str(settings.data_dir / EVENTS_FILE),
        "SQLITE_LOCK_TIMEOUT": "10",
    }


def postgres_env(url: str, *, timeout: float = 3.0) -> dict[str, str]:
    """``timeout``: how long one call of the store may take before it fails (503), also when the
    server is down (``infrastructure.postgres_event_store``)."""
    parsed = urlparse(url)
    # libpq URLs may name a socket directory instead: postgresql://user@/db?host=/tmp/sock
    host = parse_qs(parsed.query).get("host", [parsed.hostname or "127.0.0.1"])[0]
    return {
        "PERSISTENCE_MODULE": "infrastructure.audit_digests:DigestPostgresFactory",
        "POSTGRES_DBNAME": (parsed.path or "/postgres").lstrip("/") or "postgres",
        "POSTGRES_HOST": host,
        "POSTGRES_PORT": str(parsed.port or 5432),
        "POSTGRES_USER": unquote(parsed.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parsed.password or ""),
        # two connections kept open; up to 20 under load, closed again after 10 idle minutes
        # (many processes share a server's max_connections: API replicas, workers, relays)
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_MAX_OVERFLOW": "18",
        # the pool's wait for a connection, and the bound of one call, retries included
        # (eventsourcing reads whole seconds; STORE_TIMEOUT_SECONDS is the exact one); a writer
        # waits as long at most for the events table's lock
        "POSTGRES_CONNECT_TIMEOUT": str(max(1, math.ceil(timeout))),
        STORE_TIMEOUT: f"{timeout:g}",
        "POSTGRES_LOCK_TIMEOUT": str(max(1, math.ceil(timeout))),
    }


def probe(settings: Settings, events_table: str, timeout: float = 2.0) -> None:
    """Raises unless the event store answers within ``timeout`` (readiness, without retries)."""
    if settings.event_store == "memory":
        return  # in this process: it answers while the process does
    if not settings.uses_postgres:
        path = settings.data_dir / EVENTS_FILE
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout) as conn:
            conn.execute(f"SELECT 1 FROM {events_table} LIMIT 1")  # noqa: S608 - our own name
        return
    with psycopg.connect(settings.database_url or "", connect_timeout=max(1, int(timeout))) as conn:
        conn.execute(f"SET statement_timeout = {int(timeout * 1000)}")
        conn.execute(f"SELECT 1 FROM {events_table} LIMIT 1")  # noqa: S608 - our own name
