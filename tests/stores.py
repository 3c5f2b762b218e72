"""Stores for the tests: in memory, or on SQLite and Postgres where only a database shows it.

The handler tests run on the in-memory twin of the event store (eventsourcing's POPO persistence,
``TASKWARDEN_MEMORY_STORE``): the same Store, handlers, aggregates and mapping of events to
stored records, minus the database, so they take milliseconds and need no Postgres database of
their own. A test of what only a database shows (concurrent writers racing for one version,
positions read back with SQL, surviving a restart, another process reading the same log) is
marked ``@on_databases`` and runs once on SQLite and once on Postgres (``event_store`` in
tests/conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from application.committer import Committer
from application.conflict_retry import ConflictRetry
from application.ledger import Ledger
from application.ports import Clock
from application.store import Store
from infrastructure.clock import SystemClock
from infrastructure.event_store import ledger_env
from infrastructure.settings import Settings

on_databases = pytest.mark.parametrize("event_store", ["sqlite", "postgres"], indirect=True)
# what the in-memory twin must do as the databases do (positions it computes its own way)
on_every_store = pytest.mark.parametrize(
    "event_store", ["memory", "sqlite", "postgres"], indirect=True
)


def open_store(
    settings: Settings,
    *,
    create_tables: bool = True,
    retry: ConflictRetry | None = None,
    clock: Clock | None = None,
) -> Store:
    """A Store on the event store ``settings`` name, as ``interfaces/services.py`` builds it; on
    the system's clock unless the test gives its own (``tests/clock.py``)."""
    ledger = Ledger(env=ledger_env(settings, create_tables=create_tables))
    return Store(ledger, Committer(ledger), retry, clock=clock or SystemClock())


def memory_store(clock: Clock | None = None, **settings: Any) -> Store:
    """A Store whose events are kept in this process (close it with ``Store.close``)."""
    return open_store(Settings(memory_store=True, **settings), clock=clock)
