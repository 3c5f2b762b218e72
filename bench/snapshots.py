"""Aggregates that grow (issue 14, item 8): loading a task of 500 and 10,000 events with and without
snapshots, and one task updated by 4 clients at once, on SQLite and Postgres, each beside a
baseline in the same run.

    .venv/bin/python bench/snapshots.py [--store sqlite|postgres|both] [--loads 30]
        [--seconds 5] [--clients 4] [--interval 100]

Loads go through the Store (``Store.load``, what ``GET /api/tasks/{id}`` and every command on the
task do), on a ledger with snapshots every ``--interval`` events and on one without (interval 0:
every event replayed), on the same database, both without the aggregate cache (every load reads
the store as a first load does). A task of 10,000 events sits on a snapshot; one of
10,099 replays the events after the newest (49 at the default interval, the most there can be;
99 at an interval of 100). Baselines: loading a task of
one event, and the bare ``SELECT`` of the 10,000-event task's rows (eventsourcing's recorder, no
decoding). Concurrent updates: ``--clients`` threads each run ``update_task`` (the handler of
``PATCH /api/tasks/{id}``, retried on a lost race) on one task of 500 events for ``--seconds``:
replaying (as before snapshots), with snapshots, and with snapshots and the aggregate cache (the
defaults); beside the same clients each updating a task of its own (no contention: what group
commit does) and one client alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from application import projects, tasks
from application.commands import CreateProject, CreateTask, Targeted, UpdateTask
from application.committer import Committer
from application.conflict_retry import ConflictRetry
from application.ledger import Ledger
from application.store import Store
from bench.common import DEFAULT_POSTGRES, machine, percentile, scratch_database, table
from domain.task import Task
from domain.values import Actor
from infrastructure.clock import SystemClock
from infrastructure.event_store import ledger_env
from infrastructure.settings import Settings

TEAM = "bench-team"
ACTOR = Actor("bench-user", TEAM, "bench")
SAVE = 500  # events per transaction while writing a long task
TARGET_LOAD_MS = 5.0
TARGET_UPDATES = 200.0


def open_store(settings: Settings, *, create_tables: bool = False) -> Store:
    ledger = Ledger(env=ledger_env(settings, create_tables=create_tables))
    clock = SystemClock()
    return Store(ledger, Committer(ledger), ConflictRetry(30.0, clock=clock), clock=clock)


def new_task(store: Store, project_id: str, events: int) -> UUID:
    """A task of ``events`` events: created, then renamed, ``SAVE`` events per transaction."""
    cmd = CreateTask(title="long", project_id=project_id)
    task_id = UUID(str(tasks.create_task(store, cmd, ACTOR).data["id"]))
    task = store.load(Task, task_id, TEAM, "task")
    for i in range(events - 1):
        task.update({"title": f"title {i}"}, ACTOR)
        if len(task.pending_events) >= SAVE:
            store.ledger.save(*task.collect_events())
    store.ledger.save(*task.collect_events())
    assert store.ledger.flush_snapshots(60)
    return task_id


def timed(work: Callable[[], Any], count: int) -> tuple[float, float]:
    """Median and p95 in ms of ``count`` calls, after one unmeasured."""
    work()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        work()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), percentile(samples, 0.95)


def updates_per_second(store: Store, targets: list[str], seconds: float) -> tuple[float, int, int]:
    """Each target's thread updates it for ``seconds``: (updates/s, updates, errors)."""
    done = [0] * len(targets)
    errors: list[BaseException] = []
    start = threading.Barrier(len(targets) + 1)
    stop = [0.0]

    def client(n: int) -> None:
        start.wait()
        i = 0
        while time.perf_counter() < stop[0]:
            cmd = Targeted(target=targets[n], command=UpdateTask(title=f"client {n} {i}"))
            try:
                tasks.update_task(store, cmd, ACTOR)
                done[n] += 1
            except Exception as error:  # noqa: BLE001 - counted and reported
                errors.append(error)
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(len(targets))]
    for thread in threads:
        thread.start()
    stop[0] = time.perf_counter() + seconds
    started = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return sum(done) / elapsed, sum(done), len(errors)


def run_store(name: str, settings: Settings, args: argparse.Namespace) -> tuple[list, list]:
    store = open_store(settings_with(settings, args.interval, 0), create_tables=True)
    replaying = open_store(settings_with(settings, 0, 0))
    kept = open_store(settings_with(settings, args.interval, args.cache))
    loads: list[list[Any]] = []
    updates: list[list[Any]] = []
    try:
        project = projects.create_project(store, CreateProject(name="bench"), ACTOR).data
        project_id = str(project["id"])
        ids = {n: new_task(store, project_id, n) for n in (1, 500, 10_000, 10_099)}
        raw = store.ledger.recorder.select_events
        median, p95 = timed(lambda: raw(ids[10_000]), args.loads)
        loads.append([name, "baseline: SELECT of the rows", 10_000, "-", median, p95])
        for events, task_id in ids.items():
            for label, which, count in (("snapshots", store, args.loads), ("replay", replaying, 5)):
                if events == 1 and label == "replay":
                    continue
                load = lambda s=which, t=task_id: s.load(Task, t, TEAM, "task")  # noqa: E731
                median, p95 = timed(load, count if events > 1 else args.loads)
                what = "baseline: load" if events == 1 else "load"
                loads.append([name, what, events, label, median, p95])
        both = f"snapshots, cache {args.cache}"
        runs = (("replay, no cache", replaying), ("snapshots, no cache", store), (both, kept))
        for label, which in runs:
            hot = str(new_task(which, project_id, 500))
            rate, count, errors = updates_per_second(which, [hot] * args.clients, args.seconds)
            updates.append([name, f"{args.clients} clients, one task", label, rate, count, errors])
        own = [str(new_task(kept, project_id, 500)) for _ in range(args.clients)]
        rate, count, errors = updates_per_second(kept, own, args.seconds)
        updates.append([name, f"baseline: {args.clients} clients, a task each", both,
                        rate, count, errors])  # fmt: skip
        rate, count, errors = updates_per_second(kept, own[:1], args.seconds)
        updates.append([name, "baseline: 1 client", both, rate, count, errors])
    finally:
        kept.close()
        replaying.close()
        store.close()
    return loads, updates


def settings_with(settings: Settings, interval: int, cache: int) -> Settings:
    return Settings(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        snapshot_interval=interval,
        aggregate_cache_size=cache,
    )


def verdicts(loads: list[list[Any]], updates: list[list[Any]]) -> list[str]:
    lines = []
    for row in loads:
        if row[1] == "load" and row[2] >= 10_000 and row[3] == "snapshots":
            met = "met" if row[4] < TARGET_LOAD_MS else "NOT met"
            lines.append(f"target: load of a task of {row[2]:,} events < {TARGET_LOAD_MS:g} ms on "
                         f"{row[0]}: median {row[4]:.2f} ms, {met}")  # fmt: skip
    for row in updates:
        if row[1].endswith("one task") and "cache" in row[2] and "no cache" not in row[2]:
            met = "met" if row[3] >= TARGET_UPDATES and row[5] == 0 else "NOT met"
            lines.append(f"target: one task, {row[1]} >= {TARGET_UPDATES:g} updates/s with no "
                         f"error on {row[0]}: {row[3]:.0f}/s, {row[5]} errors, {met}")  # fmt: skip
    return lines


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin URL for a scratch database")
    p.add_argument("--loads", type=int, default=30, help="measured loads per task")
    p.add_argument("--seconds", type=float, default=5.0, help="of concurrent updates per run")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--interval", type=int, default=Settings().snapshot_interval,
                   help="TASKWARDEN_SNAPSHOT_INTERVAL")  # fmt: skip
    p.add_argument("--cache", type=int, default=256, help="TASKWARDEN_AGGREGATE_CACHE_SIZE")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    print(f"snapshot benchmark on {machine()}, load average {os.getloadavg()[0]:.2f} at start; "
          f"snapshots every {args.interval} events\n")  # fmt: skip
    started = time.perf_counter()
    loads: list[list[Any]] = []
    updates: list[list[Any]] = []
    if args.store in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="tw_bench_") as tmp:
            found = run_store("sqlite", Settings(data_dir=Path(tmp)), args)
            loads, updates = loads + found[0], updates + found[1]
    if args.store in ("postgres", "both"):
        with scratch_database(args.postgres) as url, tempfile.TemporaryDirectory() as tmp:
            found = run_store("postgres", Settings(data_dir=Path(tmp), database_url=url), args)
            loads, updates = loads + found[0], updates + found[1]
    print(table(["store", "read", "events", "with", "median ms", "p95 ms"], loads))
    print()
    print(table(["store", "updates", "with", "updates/s", "updates", "errors"], updates))
    print()
    for line in verdicts(loads, updates):
        print(line)
    print(f"load average {os.getloadavg()[0]:.2f} at the end; total "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
