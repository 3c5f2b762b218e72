"""The running digest of the log, written with every transaction (infrastructure/audit_digests.py).

On every store the digest recorded at P is the chain over every stored event up to P, after
single commits, group commits and concurrent writers; a row rewritten in the database afterwards
is found at its position (``application.audit.digests.check_store``); ``taskwarden migrate``
digests a store whose events were written without digests, once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, PersistenceError

from application.audit.chain import GENESIS, chain
from application.audit.digests import Divergence, check_store
from application.audit.head import audit_head
from application.ledger import Ledger
from application.store import Store
from infrastructure import audit_digests
from infrastructure.event_store import EVENTS_FILE, ledger_env
from infrastructure.settings import Settings
from infrastructure.unchanged import StaleReadError
from interfaces.services import migrate
from tests.builders import a_task
from tests.clock import ManualClock
from tests.stores import on_databases, on_every_store, open_store

WRITERS = 4
COMMITS_PER_WRITER = 15


@pytest.fixture
def settings(tmp_path: Path, event_store: dict[str, Any]) -> Settings:
    return Settings(data_dir=tmp_path, workers=0, **event_store)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = open_store(settings, clock=ManualClock())
    yield opened
    opened.close()


def everything(store: Store) -> list[Any]:
    return list(store.notifications(0, 100_000))


def recorded(store: Store) -> list[tuple[int, str]]:
    return store.digests(0, 100_000)


def assert_every_digest_is_the_chain_up_to_it(store: Store) -> None:
    events = everything(store)
    digests = recorded(store)
    assert digests, "no digest recorded"
    for position, digest in digests:
        assert digest == chain(GENESIS, [n for n in events if n.id <= position]), position
    assert digests[-1][0] == events[-1].id
    assert store.digest_head() == digests[-1]
    assert check_store(store) is None


def tasks(count: int, title: str = "t") -> list[Any]:
    return [a_task(title=f"{title}{i}") for i in range(count)]


def rewrite_state(store: Store, settings: Settings, position: int, state: bytes) -> None:
    """What someone with write access to the database could do: one stored row edited."""
    table = store.events_table
    if settings.uses_postgres:
        with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
            conn.execute(
                f"UPDATE {table} SET state = %s WHERE notification_id = %s",  # noqa: S608
                (state, position),
            )
        return
    with sqlite3.connect(settings.data_dir / EVENTS_FILE) as conn:
        conn.execute(f"UPDATE {table} SET state = ? WHERE rowid = ?", (state, position))  # noqa: S608


def delete_row(store: Store, settings: Settings, position: int) -> None:
    table = store.events_table
    if settings.uses_postgres:
        with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
            conn.execute(f"DELETE FROM {table} WHERE notification_id = %s", (position,))  # noqa: S608
        return
    with sqlite3.connect(settings.data_dir / EVENTS_FILE) as conn:
        conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (position,))  # noqa: S608


# ---- what is recorded -------------------------------------------------------------------------


@on_every_store
def test_a_new_store_has_no_digest_and_its_head_is_genesis(store):
    assert store.digest_head() is None
    assert audit_head(store) == {"position": 0, "digest": GENESIS, "at": None}
    assert check_store(store) is None


@on_every_store
def test_each_commit_records_the_chain_over_every_stored_event_up_to_its_last(store):
    for size in (1, 3, 1, 7, 2):
        store.commit(*tasks(size))
    assert [p for p, _ in recorded(store)] == [1, 4, 5, 12, 14]
    assert_every_digest_is_the_chain_up_to_it(store)


@on_every_store
def test_a_group_commit_of_many_callers_records_one_digest_at_its_end(store):
    gate = threading.Barrier(WRITERS)

    def write(i: int) -> None:
        gate.wait()
        store.commit(*tasks(2, title=f"w{i}-"))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(everything(store)) == 2 * WRITERS
    assert_every_digest_is_the_chain_up_to_it(store)


@on_every_store
def test_the_head_names_the_newest_digest_and_the_time_of_its_event(store):
    store.commit(*tasks(2))
    clock = store.clock
    assert isinstance(clock, ManualClock)
    position = store.commit(*tasks(1, title="late"))
    head = audit_head(store)
    assert head["position"] == position == 3
    assert head["digest"] == chain(GENESIS, everything(store))
    event = store.decode(everything(store)[-1])
    assert head["at"].startswith(event.timestamp.strftime("%Y-%m-%dT%H:%M:%S"))
    assert head["at"].endswith("Z")


@on_every_store
def test_a_conflicting_commit_writes_neither_its_events_nor_a_digest(store):
    stored = a_task().collect_events()
    store.committer.commit(stored)
    before = recorded(store)
    fresh = a_task(title="fresh").collect_events()
    with pytest.raises(IntegrityError):
        store.committer.commit([*fresh, *stored])  # version 1 of a stored task, again
    assert recorded(store) == before
    assert len(everything(store)) == 1
    store.commit(*tasks(1))
    assert_every_digest_is_the_chain_up_to_it(store)


@on_databases
def test_writers_in_other_processes_chain_one_after_the_other(settings, store):
    """Several ledgers on one database (as API replicas and workers are), each with writers in
    threads: positions follow the commit order and every digest chains from the one before."""
    others = [open_store(settings, create_tables=False) for _ in range(WRITERS - 1)]
    stores = [store, *others]
    gate = threading.Barrier(WRITERS * 2)
    failures: list[BaseException] = []

    def write(on: Store, i: int) -> None:
        gate.wait()
        try:
            for n in range(COMMITS_PER_WRITER):
                on.commit(*tasks(1 + n % 3, title=f"w{i}-{n}-"))
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [
        threading.Thread(target=write, args=(stores[i % WRITERS], i)) for i in range(WRITERS * 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for other in others:
        other.close()
    assert not failures
    assert len(everything(store)) == 2 * WRITERS * sum(1 + n % 3 for n in range(15))
    assert_every_digest_is_the_chain_up_to_it(store)


@on_databases
def test_a_writer_whose_commit_failed_chains_from_the_row_another_writer_committed(store, settings):
    """A writer remembers the last digest it committed, not one it computed in a transaction
    that was then rolled back: here the commit relies on an aggregate that is not where it was
    read (refused after the events and the digest row were written), another writer then commits
    at the positions the refused events took, and the first writer's next commit chains from
    that other writer's row."""
    store.commit(*tasks(1))
    with pytest.raises(StaleReadError):
        store.commit(*tasks(2, title="refused"), unchanged=[a_task()])  # never stored
    other = open_store(settings, create_tables=False)
    other.commit(*tasks(2, title="other"))
    other.close()
    store.commit(*tasks(1, title="after"))
    assert len(everything(store)) == 4
    assert_every_digest_is_the_chain_up_to_it(store)


# ---- what the check finds ---------------------------------------------------------------------


@on_databases
def test_an_old_row_rewritten_in_the_database_is_found_at_its_position(settings, store):
    for _ in range(6):
        store.commit(*tasks(1))
    store.commit(*tasks(3))  # positions 7 to 9, one transaction
    original = everything(store)[3]
    rewrite_state(store, settings, 4, original.state.replace(b"t0", b"t9"))
    found = check_store(store)
    assert found == Divergence(4, found.reason if found else "")
    assert found is not None and "positions 4" in found.reason
    rewrite_state(store, settings, 4, original.state)  # put back: as digested again
    assert check_store(store) is None
    rewrite_state(store, settings, 8, everything(store)[7].state + b" ")
    found = check_store(store)
    assert found is not None and found.position == 9  # the transaction ends there
    assert "positions 7 to 9" in found.reason


@on_databases
def test_a_row_removed_from_the_database_is_found(settings, store):
    for _ in range(4):
        store.commit(*tasks(1))
    delete_row(store, settings, 2)
    found = check_store(store)  # its digest went with the row: the next transaction's spans it
    assert found == Divergence(3, found.reason if found else "")
    assert found is not None and "positions 2 to 3" in found.reason


@on_databases
def test_an_event_stored_without_a_digest_is_found(settings, store):
    store.commit(*tasks(2))
    store_around(store, settings, tasks(1, title="bypass"))
    found = check_store(store)
    assert found is not None and found.position == 3
    assert "never digested" in found.reason
    store.commit(*tasks(1, title="after"))  # at the next position, chained from the last digest
    (_, before), (at, after) = recorded(store)
    assert at == 4 and after == chain(before, everything(store)[3:])


@on_databases
def test_a_writer_of_the_version_before_is_refused(settings, store):
    """eventsourcing's own recorder (as the version before wrote) inserts without the digest's
    column (SQLite: a row of four values in a table of five) and leaves positions to the table
    (Postgres: its default, which the layout drops): refused, not stored without a digest."""
    store.commit(*tasks(1))
    plain = plain_ledger(settings)
    try:
        with pytest.raises(PersistenceError, match="notification_id|5 columns but 4 values"):
            plain.save(*a_task(title="refused").collect_events())
    finally:
        plain.close()
    assert len(everything(store)) == 1
    assert check_store(store) is None


# ---- migrate: a store written without digests ------------------------------------------------


def store_around(store: Store, settings: Settings, written: list[Any]) -> None:
    """Events stored around the digests, after the last one, straight into the table at the next
    positions (what no writer of this or the version before can do: it is refused)."""
    events = [e for t in written for e in t.collect_events()]
    stored = [store.ledger.mapper.to_stored_event(e) for e in events]
    table = store.events_table
    if not settings.uses_postgres:
        with sqlite3.connect(settings.data_dir / EVENTS_FILE) as conn:
            for event in stored:
                conn.execute(
                    f"INSERT INTO {table} (originator_id, originator_version, topic, state) "  # noqa: S608
                    "VALUES (?, ?, ?, ?)",
                    (
                        UUID(str(event.originator_id)).hex,
                        event.originator_version,
                        event.topic,
                        event.state,
                    ),
                )
        return
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        last = conn.execute(f"SELECT max(notification_id) FROM {table}").fetchone()  # noqa: S608
        for at, event in enumerate(stored, start=(last[0] if last else 0) or 0):
            conn.execute(
                f"INSERT INTO {table} (notification_id, originator_id, "  # noqa: S608
                "originator_version, topic, state) VALUES (%s, %s, %s, %s, %s)",
                (at + 1, event.originator_id, event.originator_version, event.topic, event.state),
            )


def plain_ledger(settings: Settings) -> Ledger:
    """A ledger of the version before: eventsourcing's own recorders, no digests."""
    env = ledger_env(settings, create_tables=True)
    plain = {
        "infrastructure.audit_digests:DigestSQLiteFactory": "eventsourcing.sqlite",
        "infrastructure.audit_digests:DigestPostgresFactory": (
            "infrastructure.postgres_event_store:BoundedPostgresFactory"
        ),
    }
    return Ledger(env={**env, "PERSISTENCE_MODULE": plain[env["PERSISTENCE_MODULE"]]})


@on_databases
def test_migrate_digests_a_store_written_without_digests_once(settings):
    ledger = plain_ledger(settings)
    for size in (2, 1, 4):
        ledger.save(*[e for t in tasks(size) for e in t.collect_events()])
    ledger.close()
    migrate(settings)
    store = open_store(settings, create_tables=False)
    try:
        events = everything(store)
        assert recorded(store) == [(7, chain(GENESIS, events))]
        migrate(settings)  # nothing new: nothing written
        assert recorded(store) == [(7, chain(GENESIS, events))]
        store.commit(*tasks(2))  # and the next commit chains on from there
        assert_every_digest_is_the_chain_up_to_it(store)
    finally:
        store.close()


@on_databases
def test_migrate_digests_events_written_after_the_last_digest(settings, store):
    store.commit(*tasks(2))
    store_around(store, settings, tasks(3, title="old"))
    assert check_store(store) == Divergence(3, "stored after the last digest: never digested")
    migrate(settings)
    assert [p for p, _ in recorded(store)] == [2, 5]
    assert_every_digest_is_the_chain_up_to_it(store)


@on_databases
def test_a_store_not_migrated_since_refuses_writes_rather_than_skip_a_digest(settings):
    ledger = plain_ledger(settings)
    ledger.save(*a_task().collect_events())
    ledger.close()
    store = open_store(settings, create_tables=False)  # this version, before its migrate
    try:
        with pytest.raises(Exception):  # noqa: B017, PT011 - the database's: no such table
            store.commit(a_task(title="refused"))
        assert len(everything(store)) == 1
    finally:
        store.close()


# ---- migrate: digests kept in a table of their own (the version before) -----------------------


def run_sql(settings: Settings, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """One statement on the event store's database, outside the product."""
    if settings.uses_postgres:
        with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
            cur = conn.execute(statement.replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []
    with sqlite3.connect(settings.data_dir / EVENTS_FILE) as conn:
        return conn.execute(statement, params).fetchall()


def store_of_the_version_before(settings: Settings, extra: tuple[int, str] | None) -> None:
    """Events written in three transactions and their digests in ``tw_audit_digests``, as the
    version before kept them (``extra``: one more digest row, at no event)."""
    ledger = plain_ledger(settings)
    for size in (2, 1, 3):
        ledger.save(*[e for t in tasks(size) for e in t.collect_events()])
    events = list(ledger.recorder.select_notifications(1, 100))
    ledger.close()
    rows = [(p, chain(GENESIS, [n for n in events if n.id <= p])) for p in (2, 3, 6)]
    position = "bigint" if settings.uses_postgres else "INTEGER"  # SQLite's: the rowid itself
    run_sql(
        settings,
        f"CREATE TABLE tw_audit_digests (position {position} PRIMARY KEY, digest TEXT NOT NULL)",
    )
    for row in [*rows, *([extra] if extra else [])]:
        run_sql(settings, "INSERT INTO tw_audit_digests VALUES (?, ?)", row)


def old_table_rows(settings: Settings) -> int | None:
    """Rows in ``tw_audit_digests``, None when there is no such table."""
    try:
        return int(run_sql(settings, "SELECT count(*) FROM tw_audit_digests")[0][0])
    except (psycopg.errors.UndefinedTable, sqlite3.OperationalError):
        return None


@on_databases
def test_migrate_moves_the_digests_of_the_version_before_onto_their_rows(settings):
    store_of_the_version_before(settings, extra=None)
    migrate(settings)
    assert old_table_rows(settings) is None
    store = open_store(settings, create_tables=False)
    try:
        assert [p for p, _ in recorded(store)] == [2, 3, 6]
        assert_every_digest_is_the_chain_up_to_it(store)
        store.commit(*tasks(2))  # positions go on after the last, chained from its digest
        assert [p for p, _ in recorded(store)] == [2, 3, 6, 8]
        assert_every_digest_is_the_chain_up_to_it(store)
    finally:
        store.close()


@on_databases
def test_migrate_refuses_to_drop_a_digest_whose_event_is_gone(settings):
    store_of_the_version_before(settings, extra=(99, "f" * 64))
    with pytest.raises(Exception, match="1 of the digests in tw_audit_digests are at positions"):  # noqa: PT011
        migrate(settings)
    assert old_table_rows(settings) == 4  # kept, every row of it: the migration's transaction


# ---- Postgres: the head statement prepared on each connection ---------------------------------


def one_connection_ledger(settings: Settings) -> Ledger:
    env = ledger_env(settings, create_tables=False)
    return Ledger(env={**env, "POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "0"})


def stored_events_of(ledger: Ledger, count: int) -> list[Any]:
    return [e for t in tasks(count) for e in t.collect_events()]


@pytest.mark.parametrize("event_store", ["postgres"], indirect=True)
def test_a_head_statement_deallocated_behind_the_recorders_back_is_prepared_again(settings, store):
    """psycopg sends ``DEALLOCATE ALL`` after a rollback once it has prepared statements of its
    own; the recorder's head statement goes with them. The next write prepares it again."""
    ledger = one_connection_ledger(settings)
    try:
        ledger.save(*stored_events_of(ledger, 1))
        recorder: Any = ledger.recorder
        with recorder.datastore.get_connection() as conn:  # the pool's one connection
            conn.execute("DEALLOCATE ALL")
            assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == {
                "count": 0
            }
        ledger.save(*stored_events_of(ledger, 2))
    finally:
        ledger.close()
    assert len(everything(store)) == 3
    assert_every_digest_is_the_chain_up_to_it(store)


@pytest.mark.parametrize("event_store", ["postgres"], indirect=True)
def test_a_head_statement_forgotten_but_still_prepared_is_used(settings, store):
    """A failed write forgets the statement (its rollback usually deallocates it); when it did
    not, preparing it again finds it there, and the write goes on."""
    ledger = one_connection_ledger(settings)
    try:
        ledger.save(*stored_events_of(ledger, 1))
        with pytest.raises(StaleReadError):  # relies on a task that is not where it was read
            ledger.save(*stored_events_of(ledger, 1), unchanged={a_task().id: 1})
        ledger.save(*stored_events_of(ledger, 1))
        audit_digests._prepared.clear()  # forgotten while still prepared on the connection
        ledger.save(*stored_events_of(ledger, 1))
    finally:
        ledger.close()
    assert len(everything(store)) == 3
    assert_every_digest_is_the_chain_up_to_it(store)
