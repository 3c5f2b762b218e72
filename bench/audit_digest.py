"""The cost of the write-time digest on appends: events/s with it and without it, same run.

    .venv/bin/python bench/audit_digest.py [--store sqlite|postgres|both] [--single 4000]
        [--batched 40000] [--batch 100] [--group 8000] [--threads 16] [--rounds 20]

Every case appends freshly created ``Task.Created`` events through the ledger, once with the
recorders that write ``tw_audit_digests`` in the same transaction
(``infrastructure.audit_digests``, what the product runs) and once without (SQLite: eventsourcing's
own recorder, the version before; Postgres: the product's recorder with its digest left out,
``PlainPostgresRecorder``, since eventsourcing's inserts rows another, slower way), each into its
own store that grows as the rounds go on. The two alternate slice by slice (ABBA) and each figure
is all of a mode's events over all of its seconds, so that a busy moment of the machine falls on
both. The CPU this process spent per event (``time.process_time``, every thread) is printed too: on
a loaded machine it varies less than the wall clock (on Postgres it leaves out the server's share).
Also printed: the digest's computation alone (hashing the canonical records, no database), per
event. Target (issue 13): under 10 % slower."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from psycopg.sql import SQL, Identifier

from application.ledger import Ledger
from bench.append import app_group_commit, app_saves, new_events
from bench.common import DEFAULT_POSTGRES, machine, scratch_database, table
from infrastructure.audit_digests import _text, chain_stored, simple_query
from infrastructure.event_store import ledger_env
from infrastructure.postgres_event_store import (
    BoundedApplicationRecorder,
    BoundedPostgresFactory,
    _within_the_bound,
)
from infrastructure.settings import Settings
from infrastructure.snapshot_store import PostgresSnapshotRecorder

TARGET = 0.10
PLAIN = {  # the digest recorders' factories, and eventsourcing's own in their place
    "infrastructure.audit_digests:DigestSQLiteFactory": "eventsourcing.sqlite",
    "infrastructure.audit_digests:DigestPostgresFactory": "bench.audit_digest:PlainPostgresFactory",
}


class PlainPostgresRecorder(BoundedApplicationRecorder):
    """The product's Postgres transaction without the digest, the baseline that isolates it:
    the same three messages (``BEGIN``, the lock and ``NOTIFY`` as one simple query; the insert
    as binary arrays, not eventsourcing's composite-type array; ``COMMIT``), positions from the
    column's sequence, no head read, no digest column written. The benchmark's saves rely on no
    other aggregate's version (``infrastructure.unchanged``), so it checks none."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._texts: tuple[bytes, str] | None = None

    def _plain_insert(self, stored_events: Sequence[Any], **_: Any) -> list[int]:
        with self.datastore.get_connection() as conn:
            if self._texts is None:
                events = Identifier(self.datastore.schema, self.events_table_name)
                statements = [
                    *self.lock_table_statements,
                    SQL("NOTIFY {0}").format(Identifier(self.channel_name)),
                ]
                insert = SQL(
                    "INSERT INTO {0} (originator_id, originator_version, topic, state) "
                    "SELECT * FROM unnest(%b::{1}[], %b::bigint[], %b::text[], %b::bytea[]) "
                    "RETURNING notification_id"
                ).format(events, SQL(self.datastore.originator_id_type))
                begin = "; ".join(["BEGIN", *(_text(s, conn) for s in statements)]).encode()
                self._texts = (begin, _text(insert, conn))
            begin, text = self._texts
            with conn.cursor() as curs:
                simple_query(conn, begin)
                columns = (
                    [e.originator_id for e in stored_events],
                    [e.originator_version for e in stored_events],
                    [e.topic for e in stored_events],
                    [e.state for e in stored_events],
                )
                curs.execute(text, columns, prepare=True)
                positions = [row["notification_id"] for row in curs.fetchall()]
                simple_query(conn, b"COMMIT")
        return positions

    insert_events = _within_the_bound(_plain_insert)


class PlainPostgresFactory(BoundedPostgresFactory):
    application_recorder_class = PlainPostgresRecorder
    aggregate_recorder_class = PostgresSnapshotRecorder  # as the product's


def open_ledger(settings: Settings, *, digest: bool) -> Ledger:
    env = ledger_env(settings, create_tables=True)
    if not digest:
        env = {**env, "PERSISTENCE_MODULE": PLAIN[env["PERSISTENCE_MODULE"]]}
    return Ledger(env=env)


@contextmanager
def stores(kind: str, admin_url: str) -> Iterator[dict[bool, Settings]]:
    """A fresh store for each mode (digest on, digest off)."""
    with ExitStack() as stack:
        found = {}
        for digest in (True, False):
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tw_bench_")))
            url = stack.enter_context(scratch_database(admin_url)) if kind == "postgres" else None
            found[digest] = Settings(data_dir=tmp, database_url=url)
        yield found


def cases(args: argparse.Namespace) -> list[tuple[str, int, Callable[[Ledger, list[Any]], float]]]:
    found: list[tuple[str, int, Callable[[Ledger, list[Any]], float]]] = [
        ("1 event per save", args.single, lambda ledger, events: app_saves(ledger, events, 1)),
        (
            f"{args.batch} events per save",
            args.batched,
            lambda ledger, events: app_saves(ledger, events, args.batch),
        ),
    ]
    for threads in args.threads:
        found.append((f"group commit, {threads} threads", args.group, _group_commit(threads)))
    return found


def _group_commit(threads: int) -> Callable[[Ledger, list[Any]], float]:
    return lambda ledger, events: app_group_commit(ledger, events, threads)[0]


def run_store(kind: str, args: argparse.Namespace) -> list[list[Any]]:
    """Each case's events in ``rounds`` slices per mode, the modes alternating slice by slice
    (ABBA...), the seconds summed per mode: a busy moment of the machine falls on both."""
    rows = []
    with stores(kind, args.postgres) as settings:
        ledgers = {digest: open_ledger(settings[digest], digest=digest) for digest in (True, False)}
        try:
            for name, count, write in cases(args):
                seconds = {True: 0.0, False: 0.0}
                cpu = {True: 0.0, False: 0.0}
                size = max(count // args.rounds, 1)
                for round_ in range(args.rounds):
                    order = (True, False) if round_ % 2 == 0 else (False, True)
                    for digest in order:
                        events = new_events(size)
                        started = time.process_time()
                        seconds[digest] += size / write(ledgers[digest], events)
                        cpu[digest] += time.process_time() - started
                total = size * args.rounds
                on, off = total / seconds[True], total / seconds[False]
                cpu_on, cpu_off = (cpu[d] / total * 1e6 for d in (True, False))
                row = [kind, name, off, on, on / off, (1 - on / off) * 100, cpu_off, cpu_on]
                rows.append(row)
        finally:
            for ledger in ledgers.values():
                ledger.close()
    return rows


def digest_alone(count: int) -> float:
    """Microseconds per event to chain stored events (what the recorders add besides SQL)."""
    ledger = Ledger(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo", "IS_SNAPSHOTTING_ENABLED": "n"}
    )
    stored = [ledger.mapper.to_stored_event(e) for e in new_events(count)]
    positions = list(range(1, count + 1))
    started = time.perf_counter()
    chain_stored("0" * 64, positions, stored)
    return (time.perf_counter() - started) / count * 1e6


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin URL for scratch databases")
    p.add_argument("--single", type=int, default=4000, help="events written one per save")
    p.add_argument("--batched", type=int, default=40000, help="events written in batches")
    p.add_argument("--batch", type=int, default=100, help="events per save when batched")
    p.add_argument("--group", type=int, default=8000, help="events per group-commit run")
    p.add_argument("--threads", default="16", help="comma list of writer thread counts")
    p.add_argument("--rounds", type=int, default=20, help="slices of each case per mode")
    args = p.parse_args(argv)
    args.threads = [int(t) for t in args.threads.split(",") if t]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    print(f"write-time digest benchmark on {machine()}, {args.rounds} alternating slices\n")
    started = time.perf_counter()
    rows = []
    for kind in ("sqlite", "postgres"):
        if args.store in (kind, "both"):
            rows += run_store(kind, args)
    headers = ["store", "case", "without events/s", "with events/s", "with/without", "slower %"]
    headers += ["CPU µs/event without", "with"]
    print(table(headers, rows))
    print(f"\nthe digest's computation alone: {digest_alone(20_000):.2f} µs per event")
    worst = max(rows, key=lambda r: r[5])
    verdict = "met" if worst[5] < TARGET * 100 else "NOT met"
    print(
        f"target: under {TARGET:.0%} slower with the digest: worst {worst[5]:.1f} % "
        f"({worst[0]}, {worst[1]}), {verdict}"
    )
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
