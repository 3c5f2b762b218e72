"""Events/s appended through the ledger, beside raw inserts of the same rows, SQLite and Postgres.

    .venv/bin/python bench/append.py [--store sqlite|postgres|both] [--single 2000]
        [--batched 20000] [--batch 100] [--group 3000] [--threads 1,16,64]

Every case writes freshly created ``Task`` aggregates (one ``Task.Created`` event each). The raw
cases insert the very rows the ledger wrote (same originator id, version, topic and state bytes)
into a table of the same shape in the same database, without the library and its table lock.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from application.committer import Committer
from application.ledger import Ledger
from bench.common import DEFAULT_POSTGRES, machine, scratch_database, table
from domain.task import Task
from infrastructure.event_store import ledger_env
from infrastructure.settings import Settings

Row = tuple[Any, int, str, bytes]


@dataclass
class Case:
    name: str
    app_rate: float
    raw_rate: float
    per_txn: float


def new_events(count: int) -> list[Any]:
    """``count`` Task.Created events, built before the clock starts."""
    events = []
    for i in range(count):
        task = Task(
            team_id="default",
            project_id=str(uuid4()),
            title=f"bench task {i}",
            description="appended by bench/append.py",
            priority=2,
            tags=["bench"],
            metadata={"i": i},
            assigned_to=None,
            estimated_duration=None,
            slug=None,
            dependencies=[],
            repository_url=None,
            base_branch=None,
            ticket_id=None,
            ticket_summary=None,
            test_command=None,
            actor="bench",
            request_id=str(uuid4()),
        )
        events.extend(task.collect_events())
    return events


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def timed(work: Callable[[], None]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def in_threads(count: int, work: Callable[[int], None]) -> float:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


# ---- through the application ------------------------------------------------------------------


class CountingSaves:
    """Counts ``Ledger.save`` calls, so that group commit can report events per transaction."""

    def __init__(self, ledger: Ledger) -> None:
        self.calls = 0
        self._save = ledger.save

        def save(*objs: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return self._save(*objs, **kwargs)

        ledger.save = save  # type: ignore[method-assign]


def app_saves(ledger: Ledger, events: list[Any], batch: int) -> float:
    groups = chunks(events, batch)
    return len(events) / timed(lambda: [ledger.save(*g) for g in groups])


def app_group_commit(ledger: Ledger, events: list[Any], threads: int) -> tuple[float, float]:
    """``threads`` callers each commit their share, one event per commit, through the Committer."""
    counter = CountingSaves(ledger)
    committer = Committer(ledger)
    shares = [events[i::threads] for i in range(threads)]

    def work(i: int) -> None:
        for event in shares[i]:
            committer.commit([event])

    try:
        seconds = in_threads(threads, work)
    finally:
        committer.close()
        del ledger.save  # back to the class's method
    return len(events) / seconds, len(events) / max(counter.calls, 1)


def rows_of(ledger: Ledger, events: list[Any]) -> list[Row]:
    stored = [ledger.mapper.to_stored_event(e) for e in events]
    return [(s.originator_id, s.originator_version, s.topic, s.state) for s in stored]


# ---- raw inserts ------------------------------------------------------------------------------


class RawPostgres:
    create = (
        "CREATE TABLE bench_raw_events (originator_id uuid NOT NULL, "
        "originator_version bigint NOT NULL, topic text, state bytea, "
        "notification_id bigserial, PRIMARY KEY (originator_id, originator_version))"
    )
    insert = (
        "INSERT INTO bench_raw_events (originator_id, originator_version, topic, state) "
        "VALUES (%s, %s, %s, %s)"
    )

    def __init__(self, url: str) -> None:
        self.url = url
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(self.create)

    def connect(self) -> Any:
        return psycopg.connect(self.url, autocommit=True)

    def write(self, conn: Any, rows: Sequence[Row]) -> None:
        """One row: a single autocommitted INSERT (one round trip); more: one transaction."""
        if len(rows) == 1:
            conn.execute(self.insert, rows[0])
            return
        with conn.transaction(), conn.cursor() as curs:
            curs.executemany(self.insert, rows)


class RawSQLite:
    create = (
        "CREATE TABLE bench_raw_events (originator_id TEXT, originator_version INTEGER, "
        "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))"
    )
    insert = "INSERT INTO bench_raw_events VALUES (?, ?, ?, ?)"

    def __init__(self, path: Path) -> None:
        self.path = path
        conn = self.connect()
        conn.execute(self.create)
        conn.close()

    def connect(self) -> Any:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    def write(self, conn: Any, rows: Sequence[Row]) -> None:
        params = [(r[0].hex, r[1], r[2], r[3]) for r in rows]
        if len(params) == 1:
            conn.execute(self.insert, params[0])
            return
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(self.insert, params)
        conn.execute("COMMIT")


def raw_commits(raw: Any, rows: list[Row], batch: int) -> float:
    conn = raw.connect()
    groups = chunks(rows, batch)
    try:
        return len(rows) / timed(lambda: [raw.write(conn, g) for g in groups])
    finally:
        conn.close()


def raw_threads(raw: Any, rows: list[Row], threads: int) -> float:
    """``threads`` connections, each committing its share one row per transaction."""
    conns = [raw.connect() for _ in range(threads)]
    shares = [rows[i::threads] for i in range(threads)]

    def work(i: int) -> None:
        for row in shares[i]:
            raw.write(conns[i], [row])

    try:
        return len(rows) / in_threads(threads, work)
    finally:
        for conn in conns:
            conn.close()


# ---- one store --------------------------------------------------------------------------------


def run_store(settings: Settings, raw: Any, args: argparse.Namespace) -> list[Case]:
    ledger = Ledger(env=ledger_env(settings, create_tables=True))
    cases: list[Case] = []
    try:
        events = new_events(args.single)
        app = app_saves(ledger, events, 1)
        cases.append(Case("1 event per save", app, raw_commits(raw, rows_of(ledger, events), 1), 1))
        events = new_events(args.batched)
        app = app_saves(ledger, events, args.batch)
        raw_rate = raw_commits(raw, rows_of(ledger, events), args.batch)
        cases.append(Case(f"{args.batch} events per save", app, raw_rate, args.batch))
        for threads in args.threads:
            events = new_events(args.group)
            app, per_txn = app_group_commit(ledger, events, threads)
            raw_rate = raw_threads(raw, rows_of(ledger, events), threads)
            cases.append(Case(f"group commit, {threads} threads", app, raw_rate, per_txn))
    finally:
        ledger.close()
    return cases


def report(store: str, cases: list[Case]) -> str:
    headers = ["store", "case", "app events/s", "raw events/s", "app/raw", "app events/txn"]
    rows = [
        [store, c.name, c.app_rate, c.raw_rate, c.app_rate / c.raw_rate, c.per_txn] for c in cases
    ]
    return table(headers, rows)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin URL for a scratch database")
    p.add_argument("--single", type=int, default=2000, help="events written one per save")
    p.add_argument("--batched", type=int, default=20000, help="events written in batches")
    p.add_argument("--batch", type=int, default=100, help="events per save when batched")
    p.add_argument("--group", type=int, default=3000, help="events per group-commit run")
    p.add_argument("--threads", default="1,16,64", help="comma list of writer thread counts")
    args = p.parse_args(argv)
    args.threads = [int(t) for t in args.threads.split(",") if t]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    print(f"append benchmark on {machine()}")
    print("raw group-commit rows: one connection per thread, one row per transaction\n")
    started = time.perf_counter()
    if args.store in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="tw_bench_") as tmp:
            settings = Settings(data_dir=Path(tmp))
            print(report("sqlite", run_store(settings, RawSQLite(Path(tmp) / "raw.db"), args)))
            print()
    if args.store in ("postgres", "both"):
        with scratch_database(args.postgres) as url:
            settings = Settings(data_dir=Path(tempfile.gettempdir()), database_url=url)
            print(report("postgres", run_store(settings, RawPostgres(url), args)))
            print()
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
