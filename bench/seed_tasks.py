"""Seeds a team with many tasks through the real event store, then lets the projections catch up:
the data set of the listing benchmark (``bench/listings.py``), 100,000 or 1,000,000 tasks in
minutes.

    .venv/bin/python bench/seed_tasks.py --tasks 100000 [--database-url URL | --data-dir DIR]

Tasks are built on the aggregates and saved ``--save`` events per transaction (what group
commit makes of concurrent creates), in one project of the team ``bench`` beside a small one.
Each task has a title and a description of a few words from a fixed vocabulary (so a search
word matches about 1 in ``len(WORDS)`` tasks), a priority 1 to 4, zero to two tags; one in ten
is then completed and one in twenty cancelled (a person's move: one more event each). The
projection runner then applies the log from where the read model stands, with the deployed
batch size.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from application import projects
from application.commands import CreateProject
from application.committer import Committer
from application.ledger import Ledger
from application.store import Store
from domain.task import Task
from domain.values import Actor, TaskStatus
from infrastructure.clock import SystemClock
from infrastructure.event_store import ledger_env
from infrastructure.settings import Settings
from infrastructure.views import open_read_model
from projections.runner import ProjectionRunner

TEAM = "bench"
ACTOR = Actor("bench-user", TEAM, "bench")
SAVE = 1_000
WORDS = (
    "login cache parser billing search upload export import schema retry webhook queue "
    "timeout migration index report session token payment invoice theme layout chart "
    "sitemap backup restore metrics alert deploy rollback sandbox"
).split()
TAGS = ("backend", "frontend", "infra", "docs", "bug", "feature")
SEARCHED = "webhook"  # one of WORDS: the benchmark's search word


@dataclass(frozen=True)
class Seeded:
    project_id: str  # the big project: every task but ``small``
    small_project_id: str
    tasks: int
    events: int
    write_seconds: float
    catch_up_seconds: float


def seed(settings: Settings, tasks: int, save: int = SAVE, seed_value: int = 14) -> Seeded:
    """Writes ``tasks`` tasks (1 % of them, at most 1,000, in a second project) and catches the
    read model up."""
    ledger = Ledger(env=ledger_env(settings, create_tables=True))
    committer = Committer(ledger)
    store = Store(ledger, committer, clock=SystemClock())
    try:
        big = str(projects.create_project(store, CreateProject(name="big"), ACTOR).data["id"])
        small = str(projects.create_project(store, CreateProject(name="small"), ACTOR).data["id"])
        small_count = min(1_000, tasks // 100)
        started = time.perf_counter()
        events = write_tasks(ledger, store, big, tasks - small_count, save, seed_value)
        events += write_tasks(ledger, store, small, small_count, save, seed_value + 1)
        written = time.perf_counter() - started
        started = time.perf_counter()
        read_model = open_read_model(settings)
        try:
            read_model.migrate()
            ProjectionRunner(store, read_model, batch=settings.projection_batch).catch_up()
        finally:
            read_model.close()
        caught_up = time.perf_counter() - started
    finally:
        committer.close()
        ledger.close()
    return Seeded(big, small, tasks, events, written, caught_up)


def write_tasks(
    ledger: Ledger, store: Store, project_id: str, count: int, save: int, seed_value: int
) -> int:
    """``count`` tasks in the project, saved ``save`` events at a time; the events written."""
    rng = random.Random(seed_value)
    batch: list[Any] = []
    written = 0
    for i in range(count):
        task = new_task(rng, project_id, i)
        roll = rng.random()
        if roll < 0.10:
            task.change_status(TaskStatus.COMPLETED, None, ACTOR, at=store.clock.now())
        elif roll < 0.15:
            task.change_status(TaskStatus.CANCELLED, "not needed", ACTOR, at=store.clock.now())
        batch += task.collect_events()
        if len(batch) >= save:
            ledger.save(*batch)
            written += len(batch)
            batch = []
    if batch:
        ledger.save(*batch)
        written += len(batch)
    return written


def new_task(rng: random.Random, project_id: str, i: int) -> Task:
    words = rng.sample(WORDS, 5)
    return Task(team_id=TEAM, project_id=project_id, title=f"{words[0].title()} {words[1]} {i}",
                description=" ".join(words[2:]), priority=rng.randint(1, 4),
                tags=rng.sample(TAGS, rng.randint(0, 2)), metadata={}, assigned_to=None,
                estimated_duration=None, slug=None, dependencies=[], repository_url=None,
                base_branch=None, ticket_id=None, ticket_summary=None, test_command=None,
                actor=ACTOR.id, request_id="bench")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=100_000)
    p.add_argument("--database-url", default=None, help="Postgres; else SQLite in --data-dir")
    p.add_argument("--data-dir", type=Path, default=Path("data"))
    p.add_argument("--save", type=int, default=SAVE, help="events per transaction")
    args = p.parse_args(argv)
    settings = Settings(data_dir=args.data_dir, database_url=args.database_url)
    done = seed(settings, args.tasks, args.save)
    print(report(done))


def report(done: Seeded) -> str:
    return (
        f"seeded {done.tasks:,} tasks ({done.events:,} events) in {done.write_seconds:.1f} s "
        f"({done.events / done.write_seconds:,.0f} events/s), projections caught up in "
        f"{done.catch_up_seconds:.1f} s ({done.events / done.catch_up_seconds:,.0f} events/s); "
        f"project {done.project_id} (team {TEAM})"
    )


if __name__ == "__main__":
    main()
