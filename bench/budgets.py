"""Budget crossing (issue 12): how long after the usage event that spends a team's daily limit
new executions are refused, and the budget watch has recorded ``budget.exceeded``; beside the
floor of any read-your-write through the views (a commit until the projection runner has
applied it), measured in the same run on SQLite and Postgres.

    .venv/bin/python bench/budgets.py [--store sqlite|postgres|both] [--samples 200]

Everything runs in this process as in embedded mode (``interfaces.services.build``: the runner
and the budget watch on their threads). One task runs (claimed by the scheduler); each sample
sets the daily limit one dollar above what today spent (released), checks the work is open, then
records one dollar of usage through the worker's own path (``execution_reports.report``) and
times, from the moment that report returns (the usage event is committed):

- **refused**: until the scheduler's budget check (``budgets.Gate``, what a claim and an execute
  ask) says the scope is spent;
- **recorded**: until the ``Budget.Exceeded`` event of this limit is in the store;
- **floor**: a task update's commit until the runner has applied it, for the same store.

Waits poll the conditions (no sleep in the measured path beyond a 0.2 ms yield between checks).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from application import execution_reports, projects, tasks
from application.budgets import Gate
from application.commands import CreateProject, CreateTask, ExecuteTask, Targeted, UpdateTask
from application.executions import request_execution
from application.pricing import SetPrice, set_price
from application.scheduler import Claim
from bench.common import DEFAULT_POSTGRES, machine, percentile, scratch_database, table
from domain.budget import TEAM as TEAM_SCOPE
from domain.budget import Budget, budget_id, period_of, units
from domain.team_settings import TeamSettings, team_settings_id
from domain.values import Actor
from infrastructure.settings import Settings
from interfaces.services import Services, build, migrate

TEAM = "bench"
BY = Actor(id="user:bench", team_id=TEAM, request_id="bench-budgets")
MODEL = "bench-dollar"  # 1 USD per million input tokens
DOLLAR = {"type": "usage", "model": MODEL, "input_tokens": 1_000_000}
DEADLINE = 10.0


def until(check: Callable[[], bool], what: str) -> float:
    """Seconds until ``check`` holds (re-checked every 0.2 ms)."""
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > DEADLINE:
            raise TimeoutError(what)
        time.sleep(0.0002)
    return time.perf_counter() - started


def set_limit(services: Services, dollars: int) -> None:
    store = services.store
    found = store.find(TeamSettings, team_settings_id(TEAM), TEAM)
    settings = found or TeamSettings(team_id=TEAM)
    settings.update(actor=BY.id, request_id="bench", daily_cost_limit=Decimal(dollars))
    store.commit(settings)


def running_task(services: Services) -> tuple[Claim, str]:
    """A running execution to report usage on, and a task update to time the floor with."""
    store = services.store
    project_id = str(projects.create_project(store, CreateProject(name="bench"), BY).data["id"])
    price = SetPrice(input=1.0, output=0.0, cache_read=0.0, cache_write=0.0)
    set_price(store, Targeted(target=MODEL, command=price), BY)
    task_id = str(
        tasks.create_task(store, CreateTask(title="runs", project_id=project_id), BY).data["id"]
    )
    target = Targeted(target=task_id, command=ExecuteTask())
    request_execution(store, target, BY, spending=services.read_model)
    written = tasks.create_task(store, CreateTask(title="updated", project_id=project_id), BY)
    services.runner.wait_for(store.max_position(), DEADLINE)
    claim = services.scheduler.claim("bench-worker", team_id=TEAM)
    if claim is None:
        raise RuntimeError("the bench task was not claimed")
    return claim, str(written.data["id"])


def sample(services: Services, claim: Claim, dollars: int) -> tuple[float, float]:
    """One crossing: the limit is ``dollars``, ``dollars - 1`` spent; one dollar more."""
    store, views = services.store, services.read_model
    set_limit(services, dollars)
    if not Gate(store, views, store.clock.now()).open(TEAM, claim.project_id):
        raise RuntimeError("the raised limit did not release the work")
    execution_reports.report(store, claim, DOLLAR, None)
    refused = until(
        lambda: not Gate(store, views, store.clock.now()).open(TEAM, claim.project_id), "refused"
    )
    period = period_of(TEAM_SCOPE, store.clock.now())
    key = budget_id(TEAM, TEAM_SCOPE, None, period)
    limit = units(Decimal(dollars))

    def recorded() -> bool:
        budget = store.find(Budget, key, TEAM)
        return budget is not None and budget.exceeded_under(limit)

    return refused, refused + until(recorded, "recorded")


def floor(services: Services, task_id: str, n: int) -> float:
    store = services.store
    cmd = Targeted(target=task_id, command=UpdateTask(description=f"floor {n}"))
    position = tasks.update_task(store, cmd, BY).position
    return until(lambda: services.runner.position >= position, "applied")


def run_store(name: str, settings: Settings, samples: int, warmup: int) -> list[list[Any]]:
    migrate(settings)
    services = build(settings)
    try:
        claim, other = running_task(services)
        refused: list[float] = []
        recorded: list[float] = []
        floors: list[float] = []
        for i in range(1, samples + warmup + 1):
            r, w = sample(services, claim, i)
            f = floor(services, other, i)
            if i > warmup:
                refused.append(r * 1000)
                recorded.append(w * 1000)
                floors.append(f * 1000)
        return [
            row(name, "usage -> executes refused", refused, floors),
            row(name, "usage -> budget.exceeded recorded", recorded, floors),
        ]
    finally:
        services.close()


def row(name: str, figure: str, values: list[float], floors: list[float]) -> list[Any]:
    p95, floor95 = percentile(values, 0.95), percentile(floors, 0.95)
    return [
        name,
        figure,
        len(values),
        round(percentile(values, 0.5), 2),
        round(p95, 2),
        round(percentile(values, 0.99), 2),
        round(percentile(floors, 0.5), 2),
        round(floor95, 2),
        round(p95 / floor95, 2) if floor95 else None,
    ]


HEADERS = [
    "store",
    "figure",
    "n",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "floor p50 ms",
    "floor p95 ms",
    "p95 / floor p95",
]


def settings_for(data_dir: Path, database_url: str | None) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        workspace_root=data_dir / "workspaces",
        rate_limit_enabled=False,
        workers=0,
    )


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin URL for a scratch database")
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    print(f"budget crossing benchmark on {machine()}, load average {os.getloadavg()[0]:.2f}")
    started = time.perf_counter()
    rows: list[list[Any]] = []
    if args.store in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="tw_bench_") as tmp:
            rows += run_store("sqlite", settings_for(Path(tmp), None), args.samples, args.warmup)
    if args.store in ("postgres", "both"):
        with (
            tempfile.TemporaryDirectory(prefix="tw_bench_") as tmp,
            scratch_database(args.postgres) as url,
        ):
            rows += run_store("postgres", settings_for(Path(tmp), url), args.samples, args.warmup)
    print()
    print(table(HEADERS, rows))
    load, total = os.getloadavg()[0], time.perf_counter() - started
    print(f"\nload average at the end {load:.2f}; total {total:.1f} s")


if __name__ == "__main__":
    main()
