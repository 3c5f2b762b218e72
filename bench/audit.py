"""Audit export and verify throughput, beside a plain SELECT of the same rows as JSON lines.

    .venv/bin/python bench/audit.py [--store sqlite|postgres|both] [--events 100000]
        [--repeat 2]

Seeds ``--events`` Task.Created events (two teams, alternating) through the real ledger, 500 per
transaction. Then, on the same store in the same run, best of ``--repeat``:

- baseline: one ``SELECT`` of the rows in position order (a server-side cursor on Postgres), each
  row written to a file as a JSON line of the same fields, unsorted and unhashed;
- export: ``application.audit.export`` of every event (canonical records, hash chain, signed
  head) through ``Store.notifications`` in batches of 1,000, to a file; and of one team's half;
- verify: ``application.audit.verify`` of the whole export file (target: 100,000 events/s).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import msgspec
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from application.audit.export import Scope, export
from application.audit.verify import verify
from application.committer import Committer
from application.ledger import Ledger
from application.store import Store
from bench.common import DEFAULT_POSTGRES, machine, scratch_database, table
from domain.task import Task
from infrastructure.audit_key import load_audit_key
from infrastructure.clock import SystemClock
from infrastructure.event_store import EVENTS_FILE, ledger_env
from infrastructure.settings import Settings

SEED_BATCH = 500
TARGET_VERIFY = 100_000
_line = msgspec.json.Encoder()


def seed(ledger: Ledger, count: int) -> None:
    for start in range(0, count, SEED_BATCH):
        events: list[Any] = []
        for i in range(start, min(start + SEED_BATCH, count)):
            task = Task(
                team_id="team-a" if i % 2 == 0 else "team-b",
                project_id=str(uuid4()),
                title=f"audited task {i}",
                description="seeded by bench/audit.py",
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
        ledger.save(*events)


def json_lines(rows: Iterator[tuple[Any, ...]], out: Any) -> int:
    """The baseline's writing: each row as a JSON line of the same fields."""
    count = 0
    for position, originator_id, version, topic, state in rows:
        record = {
            "position": position,
            "originator_id": str(originator_id),
            "originator_version": version,
            "topic": topic,
            "state": bytes(state).decode("utf-8"),
        }
        out.write(_line.encode(record) + b"\n")
        count += 1
    return count


SELECT = (  # SQLite keeps the position as the rowid (eventsourcing's SQLite recorder)
    "SELECT {position}, originator_id, originator_version, topic, state "
    "FROM {table} ORDER BY {position}"
)


def select_sqlite(path: Path, events_table: str) -> Callable[[Any], int]:
    def run(out: Any) -> int:
        conn = sqlite3.connect(path)
        try:
            cursor = conn.execute(SELECT.format(position="rowid", table=events_table))
            return json_lines(iter(cursor), out)
        finally:
            conn.close()

    return run


def select_postgres(url: str, events_table: str) -> Callable[[Any], int]:
    def run(out: Any) -> int:
        with psycopg.connect(url) as conn, conn.cursor(name="audit_baseline") as cursor:
            cursor.itersize = 1000
            cursor.execute(SELECT.format(position="notification_id", table=events_table))
            return json_lines(iter(cursor), out)

    return run


def best(repeat: int, work: Callable[[], int]) -> tuple[int, float, float]:
    """(items, wall seconds, this process's CPU seconds) of the fastest of ``repeat`` runs. The CPU
    time leaves out what other processes on a loaded machine take (and, on Postgres, the
    server's own work, which the wall time includes)."""
    runs = []
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        items = work()
        runs.append((items, time.perf_counter() - started, time.process_time() - cpu))
    return min(runs, key=lambda run: run[1])


def measure(name: str, settings: Settings, args: argparse.Namespace, scratch: Path) -> list[Any]:
    ledger = Ledger(env=ledger_env(settings, create_tables=True))
    store = Store(ledger, Committer(ledger), clock=SystemClock())
    key = load_audit_key(None, scratch)
    try:
        started = time.perf_counter()
        seed(ledger, args.events)
        seeded = args.events / (time.perf_counter() - started)
        print(f"{name}: seeded {args.events:,} events at {seeded:,.0f} events/s", flush=True)
        if settings.uses_postgres:
            baseline = select_postgres(settings.database_url or "", store.events_table)
        else:
            baseline = select_sqlite(settings.data_dir / EVENTS_FILE, store.events_table)
        path = scratch / f"{name}.jsonl"

        def to_file(write: Callable[[Any], int]) -> Callable[[], int]:
            def run() -> int:
                with path.open("wb") as out:
                    return write(out)

            return run

        def exporting(scope: Scope) -> Callable[[Any], int]:
            def run(out: Any) -> int:
                chunk = b""
                for chunk in export(store, key, scope):
                    out.write(chunk)
                return int(msgspec.json.decode(chunk)["count"])  # the last chunk: the head

            return run

        base = best(args.repeat, to_file(baseline))
        team = best(args.repeat, to_file(exporting(Scope(team="team-a"))))
        whole = best(args.repeat, to_file(exporting(Scope())))  # last: the file verified next

        def verifying() -> int:
            with path.open("rb") as lines:
                verdict = verify(lines, key.public)
            assert verdict.intact, verdict.summary()
            return verdict.count

        checked = best(args.repeat, verifying)
    finally:
        store.close()
    base_rate = base[0] / base[1]  # wall time: the baseline's and the export's alike
    rows = []
    for case, (items, seconds, cpu) in (
        ("SELECT as JSON lines (baseline)", base),
        ("export, every event", whole),
        ("export, one team (half)", team),
        ("verify, every event", checked),
    ):
        rate, on_cpu = items / seconds, items / max(cpu, 1e-9)
        scanned = args.events / seconds  # events read from the store (a team's export reads all)
        ratio = scanned / base_rate if "verify" not in case else rate / TARGET_VERIFY
        row = (
            name,
            case,
            items,
            f"{seconds:.2f}",
            f"{rate:,.0f}",
            f"{on_cpu:,.0f}",
            f"{ratio:.2f}",
        )
        rows.append(row)
    return rows


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin URL for a scratch database")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    print(f"bench/audit.py: {args.events:,} events, best of {args.repeat} ({machine()})")
    rows: list[Any] = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        if args.store in ("sqlite", "both"):
            settings = Settings(data_dir=scratch / "data")
            rows += measure("sqlite", settings, args, scratch)
        if args.store in ("postgres", "both"):
            with scratch_database(args.postgres) as url:
                settings = Settings(data_dir=scratch / "pg", database_url=url)
                rows += measure("postgres", settings, args, scratch)
    headers = ("store", "case", "records", "seconds", "records/s", "records/CPU s", "ratio")
    print(table(headers, rows))
    print(
        "ratio (wall time): events read from the store per second over the baseline's (a team's "
        f"export reads every event); for verify, records/s over the target of {TARGET_VERIFY:,}"
    )


if __name__ == "__main__":
    main()
