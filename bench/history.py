"""A task's timeline and the board as of a moment (issue 13): a page of the history of a task with
10,000 events (usage, output, questions asked and answered), beside a bare Starlette endpoint in
the same run, and ``GET /api/projects/{id}/tasks?as_of=`` over a project of 10,000 tasks, SQLite
and Postgres.

    .venv/bin/python bench/history.py [--store sqlite|postgres|both] [--events 10000]
        [--tasks 10000] [--requests 300] [--board-requests 10] [--warmup 20]

The events are written through the real event store (aggregates saved 500 events per
transaction), the projection runner catches up (the timeline finds the task's questions in
``tw_hitl`` and its output in ``tw_output``, the board its tasks in ``tw_task_members``), then the
real app in a child process answers one keep-alive client (``bench.costs``' servers and client).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from application import executions, projects, tasks
from application.commands import CreateProject, CreateTask, ExecuteTask, Targeted
from application.committer import Committer
from application.ledger import Ledger
from application.store import Store
from bench.common import DEFAULT_POSTGRES, machine, scratch_database, table
from bench.costs import (
    BENCH_ADMIN_KEY,
    NOTHING_SPENT,
    TEAM,
    _p50_p95,
    catch_up,
    latencies,
    serving,
    token_for,
    usage_of,
)
from domain.hitl import Question
from domain.output import OutputChunk
from domain.task import Task
from domain.values import Actor
from infrastructure.clock import SystemClock
from infrastructure.event_store import ledger_env
from infrastructure.settings import Settings

TARGET_P95_MS = 20.0
ACTOR = Actor("bench-user", TEAM, "bench")
WORKER = Actor("worker:bench", TEAM, "bench")
SAVE = 500


def write_task(store: Store, ledger: Ledger, project_id: str, events: int) -> tuple[str, int]:
    """One executing task whose timeline holds about ``events`` events: a third usage, half
    output chunks, the rest questions asked and answered. Returns its id and how many events
    its timeline holds."""
    cmd = CreateTask(title="long history", project_id=project_id)
    task_id = str(tasks.create_task(store, cmd, ACTOR).data["id"])
    executions.request_execution(
        store, Targeted(target=task_id, command=ExecuteTask()), ACTOR, spending=NOTHING_SPENT
    )
    task = store.load(Task, UUID(task_id), TEAM, "task")
    execution = str(task.execution_id)
    task.start_execution(execution, "w1", WORKER, at=store.clock.now())
    store.commit(task)
    pending: list[Any] = []
    written = 3  # created, execution requested, started
    for i in range(events):
        kind = i % 6
        if kind < 2:
            task.record_usage(execution, usage_of(i), WORKER)
            written += 1
        elif kind < 5:
            written += 1
            pending.append(OutputChunk(TEAM, task.project_id, task_id, execution, i, "stdout",
                                       f"line {i}\n"))  # fmt: skip
        elif i % 12 == 5:
            question = Question(team_id=TEAM, project_id=task.project_id, task_id=task_id,
                                execution_id=execution, question=f"question {i}?", options=[],
                                default=None, deadline=None, actor=WORKER.id,
                                request_id=execution)  # fmt: skip
            question.answer(f"answer {i}", "user:bench")
            pending.append(question)
            written += 2
        if len(pending) + len(task.pending_events) >= SAVE:
            _save(ledger, task, pending)
    _save(ledger, task, pending)
    return task_id, written


def _save(ledger: Ledger, task: Task, pending: list[Any]) -> None:
    events = [*task.collect_events(), *(e for a in pending for e in a.collect_events())]
    if events:
        ledger.save(*events)
    pending.clear()


def write_board(ledger: Ledger, project_id: str, count: int) -> None:
    """``count`` more tasks in the project, each created and renamed."""
    batch: list[Any] = []
    for i in range(count):
        task = Task(team_id=TEAM, project_id=project_id, title=f"task {i}", description="",
                    priority=2, tags=["bench"] if i % 2 else [], metadata={}, assigned_to=None,
                    estimated_duration=None, slug=None, dependencies=[], repository_url=None,
                    base_branch=None, ticket_id=None, ticket_summary=None, test_command=None,
                    actor=ACTOR.id, request_id="bench")  # fmt: skip
        task.update({"title": f"task {i} renamed"}, ACTOR)
        batch += task.collect_events()
        if len(batch) >= SAVE:
            ledger.save(*batch)
            batch = []
    if batch:
        ledger.save(*batch)


def run_store(
    name: str, settings: Settings, env: dict[str, str], args: argparse.Namespace
) -> list[list[Any]]:  # noqa: E501
    ledger = Ledger(env=ledger_env(settings, create_tables=True))
    committer = Committer(ledger)
    store = Store(ledger, committer, clock=SystemClock())
    try:
        project_id = str(
            projects.create_project(store, CreateProject(name="bench"), ACTOR).data["id"]
        )  # noqa: E501
        task_id, events = write_task(store, ledger, project_id, args.events)
        middle = store.max_position()
        write_board(ledger, project_id, args.tasks - 1)  # with the long one: --tasks in all
        position, _ = catch_up(settings, store)
    finally:
        committer.close()
        ledger.close()
    paths = [
        ("bare", "/bare", args.requests),
        ("history, first page", f"/api/tasks/{task_id}/history?limit=100", args.requests),
        (
            "history, a late page",
            f"/api/tasks/{task_id}/history?limit=100&after={middle - 200}",
            args.requests,
        ),  # fmt: skip
        (
            "history, output only",
            f"/api/tasks/{task_id}/history?include=output&limit=100",
            args.requests,
        ),  # fmt: skip
        (
            "board as_of (position)",
            f"/api/projects/{project_id}/tasks?as_of={position}",
            args.board_requests,
        ),  # fmt: skip
    ]
    rows = []
    with serving("bare_app", env) as url:
        samples = asyncio.run(latencies(url, "/bare", "x" * 180, args.warmup, args.requests))
        rows.append([name, "bare /bare", "-", *_p50_p95(samples)])
    with serving("real_app", env) as url:
        token = token_for(url)
        for label, path, count in paths[1:]:
            warm = args.warmup if count == args.requests else 1
            samples = asyncio.run(latencies(url, path, token, warm, count))
            size = f"{events:,} events" if "history" in label else f"{args.tasks:,} tasks"
            rows.append([name, label, size, *_p50_p95(samples)])
    return rows


HEADERS = ["store", "GET", "size", "p50 ms", "p95 ms"]


def verdicts(rows: list[list[Any]]) -> list[str]:
    lines = []
    for row in rows:
        if row[1].startswith("history"):
            met = "met" if row[4] < TARGET_P95_MS else "NOT met"
            lines.append(
                f"target: {row[1]} p95 < {TARGET_P95_MS:.0f} ms on {row[0]} ({row[2]}): "
                f"{row[4]:.1f} ms, {met}"
            )
    return lines


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin URL for a scratch database")
    p.add_argument("--events", type=int, default=10_000, help="events on the task's timeline")
    p.add_argument("--tasks", type=int, default=10_000, help="tasks in the project, in all")
    p.add_argument("--requests", type=int, default=300, help="measured GETs per history path")
    p.add_argument("--board-requests", type=int, default=10, help="measured as_of GETs")
    p.add_argument("--warmup", type=int, default=20, help="unmeasured GETs before each path")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    print(
        f"timeline and board benchmark on {machine()}; a task of {args.events:,} events, a "
        f"project of {args.tasks:,} tasks; one keep-alive client\n"
    )
    started = time.perf_counter()
    common_env = {
        "TASKWARDEN_ADMIN_KEY": BENCH_ADMIN_KEY,
        "TASKWARDEN_RATE_LIMIT_ENABLED": "0",
        "TASKWARDEN_WORKERS": "0",
    }
    rows: list[list[Any]] = []
    if args.store in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="tw_bench_") as tmp:
            settings = Settings(data_dir=Path(tmp))
            rows += run_store("sqlite", settings, common_env | {"TASKWARDEN_DATA_DIR": tmp}, args)
    if args.store in ("postgres", "both"):
        with scratch_database(args.postgres) as url, tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), database_url=url)
            env = common_env | {"TASKWARDEN_DATABASE_URL": url, "TASKWARDEN_DATA_DIR": tmp}
            rows += run_store("postgres", settings, env, args)
    print(table(HEADERS, rows))
    print()
    for line in verdicts(rows):
        print(line)
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
