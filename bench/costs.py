"""Cost rollups (issue 12): projection catch-up of usage events beside a raw batched upsert of the
same rollup rows, and ``GET /api/costs/daily`` and ``/by-agent`` latency beside a bare endpoint,
SQLite and Postgres.

    .venv/bin/python bench/costs.py [--store sqlite|postgres|both] [--usage 100000]
        [--tasks 200] [--days 30] [--rounds 3] [--requests 300] [--warmup 30]

The usage events are written through the real event store: projects and tasks through the
handlers, then ``Task.record_usage`` on the aggregates, saved ``--save`` events per transaction
(the batched writes group commit makes). Their timestamps are spread over ``--days`` UTC days
(set on the events before they are saved), as a log collected over weeks would be. The
projection runner then catches up from position 0 with the deployed batch size, ``--rounds``
times (the views emptied and vacuumed between, as a rebuild starts; the median is the figure,
the range beside it); the raw case upserts, per batch of the same size, the rows that batch
rolls up to (the projection's own ``INSERT ... ON CONFLICT DO UPDATE``) into a table of the same
shape in the same database, without decoding events or the other views. The HTTP figures are
one keep-alive client (``bench.common.KeepAliveConnection``) against the real app in a child
process, over the same database, beside a bare Starlette endpoint answering a small JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from application import executions, projects, tasks
from application.commands import CreateProject, CreateTask, ExecuteTask, Targeted
from application.committer import Committer
from application.ledger import Ledger
from application.store import Store
from bench.common import (
    DEFAULT_POSTGRES,
    KeepAliveConnection,
    machine,
    percentile,
    scratch_database,
    server_in_process,
    table,
)
from bench.create_tasks import cpu_seconds
from domain.task import Task
from domain.usage import Usage
from domain.values import Actor
from infrastructure import garbage_collection
from infrastructure.clock import SystemClock
from infrastructure.event_store import ledger_env
from infrastructure.settings import Settings
from infrastructure.sql_cost_views import COST_UPSERT, KEY, cost_schema
from infrastructure.views import SQLITE_FILE, open_read_model
from projections.costs import TOTALS, CostKey, CostTotals, cost_units, rolled_up
from projections.runner import ProjectionRunner

TARGET_EVENTS_S = 30_000.0
TARGET_P95_MS = 20.0
TEAM = "bench"
BENCH_ADMIN_KEY = "bench-admin-key-not-a-secret"
ACTOR = Actor("bench-user", TEAM, "bench")
WORKER = Actor("worker:bench", TEAM, "bench")
AGENTS = ("claude_code", "codex", "default")
MODELS = (
    ("claude-sonnet-4-5", "anthropic"),
    ("claude-haiku-4-5", "anthropic"),
    ("gpt-5", "openai"),
    ("gpt-5-mini", "openai"),
)
ENDPOINTS = ("/api/costs/daily?days=30", "/api/costs/by-agent")


# ---- writing the usage through the event store ------------------------------------------------


def usage_of(i: int) -> Usage:
    model, provider = MODELS[i % len(MODELS)]
    return Usage(
        model=model,
        provider=provider,
        input_tokens=1000 + i % 97,
        output_tokens=200 + i % 13,
        cache_read_tokens=5000,
        cache_write_tokens=100,
        requests=1 + i % 3,
        cost_usd=round(0.001 * (1 + i % 7), 8),
    )


class NothingSpent:
    """The rollups before any usage: the bench's team has no limit, so they are never read."""

    def cost_totals(self, team_id: str, q: Any) -> CostTotals:
        return CostTotals()


NOTHING_SPENT = NothingSpent()


def prepare_tasks(store: Store, count: int) -> list[tuple[str, str, str]]:
    """``count`` tasks in one project, executing: (task id, execution id, agent) each."""
    project_id = str(projects.create_project(store, CreateProject(name="bench"), ACTOR).data["id"])
    found = []
    for i in range(count):
        agent = AGENTS[i % len(AGENTS)]
        cmd = CreateTask(title=f"bench {i}", project_id=project_id, metadata={"agent": agent})
        task_id = str(tasks.create_task(store, cmd, ACTOR).data["id"])
        target = Targeted(target=task_id, command=ExecuteTask())
        executions.request_execution(store, target, ACTOR, spending=NOTHING_SPENT)
        task = store.load(Task, UUID(task_id), TEAM, "task")
        execution_id = str(task.execution_id)
        task.start_execution(execution_id, "w1", WORKER, at=store.clock.now())
        store.commit(task)
        found.append((task_id, execution_id, agent))
    return found


def write_usage(
    store: Store, ledger: Ledger, usage: int, task_count: int, days: int, save: int
) -> tuple[list[tuple[CostKey, CostTotals]], float]:
    """Records ``usage`` events spread over the tasks and ``days``; returns each event's rollup
    fact (key, totals) in log order, for the raw case, and the events/s of the writes."""
    prepared = prepare_tasks(store, task_count)
    project_id = store.load(Task, UUID(prepared[0][0]), TEAM, "task").project_id
    today = datetime.now(UTC)
    facts: list[tuple[CostKey, CostTotals]] = []
    per_task = -(-usage // task_count)
    written = 0
    started = time.perf_counter()
    for n, (task_id, execution_id, agent) in enumerate(prepared):
        task = store.load(Task, UUID(task_id), TEAM, "task")
        mine = min(per_task, usage - written)
        for chunk in range(0, mine, save):
            for j in range(chunk, min(mine, chunk + save)):
                task.record_usage(execution_id, usage_of(n + j), WORKER)
            events = task.collect_events()
            for j, event in enumerate(events, start=chunk):
                when = today - timedelta(days=j % days)
                object.__setattr__(event, "timestamp", when)
                facts.append((fact_key(event, project_id, agent), fact_totals(event)))
            ledger.save(*events)
        written += mine
        if written >= usage:
            break
    return facts, written / (time.perf_counter() - started)


def fact_key(event: Any, project_id: str, agent: str) -> CostKey:
    return CostKey(
        team_id=TEAM,
        day=event.timestamp.astimezone(UTC).date().isoformat(),
        project_id=project_id,
        task_id=str(event.originator_id),
        execution_id=event.execution_id,
        agent=agent,
        provider=event.provider or "",
        model=event.model or "",
    )


def fact_totals(event: Any) -> CostTotals:
    return CostTotals(
        input_tokens=event.input_tokens,
        output_tokens=event.output_tokens,
        cache_read_tokens=event.cache_read_tokens,
        cache_write_tokens=event.cache_write_tokens,
        reasoning_tokens=event.reasoning_tokens or 0,
        requests=event.requests,
        calls=1,
        cost_units=cost_units(event.cost_usd),
    )


# ---- raw upserts of the same rollup rows ------------------------------------------------------


def raw_upserts(settings: Settings, facts: list[tuple[CostKey, CostTotals]], batch: int) -> float:
    """Events/s of upserting, per ``batch`` facts in one transaction, the rows they roll up to."""
    from projections.costs import CostFact  # noqa: PLC0415

    create = [s.replace("tw_costs", "bench_raw_costs") for s in cost_schema("BIGINT")]
    upsert = COST_UPSERT.replace("tw_costs", "bench_raw_costs")
    batches = []
    for i in range(0, len(facts), batch):
        rows = rolled_up(CostFact(key=k, totals=t) for k, t in facts[i : i + batch])
        batches.append(
            [
                (*(getattr(k, n) for n in KEY), *(getattr(t, n) for n in TOTALS))
                for k, t in sorted(rows.items())
            ]
        )
    if settings.uses_postgres:
        with psycopg.connect(settings.database_url or "") as conn:
            for statement in create:
                conn.execute(statement.replace("_project ON", "_raw_project ON"))
            conn.commit()
            sql = upsert.replace("?", "%s")
            started = time.perf_counter()
            for values in batches:
                with conn.cursor() as cur:
                    cur.executemany(sql, values)
                conn.commit()
            return len(facts) / (time.perf_counter() - started)
    lite = sqlite3.connect(settings.data_dir / SQLITE_FILE, isolation_level=None, timeout=30)
    try:
        for statement in create:
            lite.execute(statement.replace("_project ON", "_raw_project ON"))
        started = time.perf_counter()
        for values in batches:
            lite.execute("BEGIN IMMEDIATE")
            lite.executemany(upsert, values)
            lite.execute("COMMIT")
        return len(facts) / (time.perf_counter() - started)
    finally:
        lite.close()


# ---- the projection ---------------------------------------------------------------------------


def catch_up(settings: Settings, store: Store, rounds: int) -> tuple[int, list[float]]:
    """Events projected from position 0 and events/s of each round, with the deployed batch
    size. The first round follows the writes; each later one empties the views (a rebuild's
    ``reset``), vacuums them, and catches up again: one run swings by 15 % on a busy machine."""
    read_model = open_read_model(settings)
    rates: list[float] = []
    position = 0
    try:
        read_model.migrate()
        for round_ in range(rounds):
            if round_:
                read_model.reset()
                read_model.refresh_statistics()
            runner = ProjectionRunner(store, read_model, batch=settings.projection_batch)
            garbage_collection.settle()  # as a served process's runner (projections role, api)
            started = time.perf_counter()
            position = runner.catch_up()
            rates.append(position / (time.perf_counter() - started))
        return position, rates
    finally:
        read_model.close()


def rollup_rows(settings: Settings) -> int:
    read_model = open_read_model(settings)
    try:
        with read_model._reading() as cur:  # type: ignore[attr-defined]  # noqa: SLF001
            return int(cur.execute("SELECT COUNT(*) FROM tw_costs").fetchone()[0])
    finally:
        read_model.close()


# ---- the HTTP reads ---------------------------------------------------------------------------


def real_app() -> Starlette:
    """The app as deployed, configured from TASKWARDEN_* variables."""
    from interfaces.http.app import create_app  # noqa: PLC0415 - only the server needs it

    return create_app(Settings.from_env(), migrate_first=True, settle=True)  # as served


def bare_app() -> Starlette:
    async def small(request: Request) -> Response:
        body = b'{"data":[{"agent":"codex","cost_usd":1.25,"calls":3}],"error":null}'
        return Response(body, media_type="application/json")

    async def health(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return Starlette(routes=[Route("/bare", small), Route("/health", health)])


def token_for(url: str) -> str:
    minted = httpx.post(
        f"{url}/api/auth/token",
        json={"team_id": TEAM, "role": "operator"},
        headers={"X-Admin-Key": BENCH_ADMIN_KEY},
        timeout=30,
    )
    minted.raise_for_status()
    return str(minted.json()["data"]["access_token"])


async def latencies(url: str, path: str, token: str, warmup: int, count: int) -> list[float]:
    conn = await KeepAliveConnection.open(url)
    headers = {"authorization": f"Bearer {token}"}
    samples = []
    try:
        for i in range(warmup + count):
            started = time.perf_counter()
            status, _ = await conn.request("GET", path, headers=headers)
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}")
            if i >= warmup:
                samples.append(time.perf_counter() - started)
    finally:
        await conn.close()
    return samples


@contextmanager
def serving(name: str, env: dict[str, str]) -> Iterator[str]:
    """Yields the base URL once the server has settled (see ``settle``)."""
    with server_in_process(f"bench.costs:{name}", env, timeout=120) as (url, pid):
        settle(pid)
        yield url


def settle(pid: int, quiet: float = 0.05, interval: float = 0.5, limit: float = 300.0) -> None:
    """Waits until the server uses under ``quiet`` of a core: at start the app's consumers (the
    relay, the fan-out) work through the whole log, which is not what a read costs."""
    deadline = time.monotonic() + limit
    before = cpu_seconds(pid)
    while before is not None and time.monotonic() < deadline:
        time.sleep(interval)
        after = cpu_seconds(pid)
        if after is None or after - before < quiet * interval:
            return
        before = after


def reads(env: dict[str, str], args: argparse.Namespace) -> list[tuple[str, float, float]]:
    """(path, p50 ms, p95 ms) of the bare endpoint, then each cost endpoint."""
    found = []
    with serving("bare_app", env) as url:
        samples = asyncio.run(latencies(url, "/bare", "x" * 180, args.warmup, args.requests))
        found.append(("bare /bare", *_p50_p95(samples)))
    with serving("real_app", env) as url:
        token = token_for(url)
        for path in ENDPOINTS:
            samples = asyncio.run(latencies(url, path, token, args.warmup, args.requests))
            found.append((path, *_p50_p95(samples)))
    return found


def _p50_p95(samples: Sequence[float]) -> tuple[float, float]:
    return percentile(samples, 0.50) * 1000, percentile(samples, 0.95) * 1000


# ---- one store --------------------------------------------------------------------------------


def run_store(
    store_name: str, settings: Settings, env: dict[str, str], args: argparse.Namespace
) -> tuple[list[Any], list[list[Any]]]:
    ledger = Ledger(env=ledger_env(settings, create_tables=True))
    committer = Committer(ledger)
    store = Store(ledger, committer, clock=SystemClock())
    try:
        facts, write_rate = write_usage(store, ledger, args.usage, args.tasks, args.days, args.save)
        position, rates = catch_up(settings, store, args.rounds)
    finally:
        committer.close()
        ledger.close()
    raw_rate = raw_upserts(settings, facts, settings.projection_batch)
    rows = rollup_rows(settings)
    app_rate = statistics.median(rates)
    projection = [
        store_name,
        len(facts),
        position,
        rows,
        write_rate,
        app_rate,
        f"{min(rates):,.0f}-{max(rates):,.0f}",
        raw_rate,
        app_rate / raw_rate,
    ]
    http = [[store_name, len(facts), path, p50, p95] for path, p50, p95 in reads(env, args)]
    return projection, http


PROJECTION_HEADERS = [
    "store",
    "usage events",
    "events projected",
    "rollup rows",
    "write events/s",
    "catch-up events/s (median)",
    "rounds' range",
    "raw upsert events/s",
    "catch-up/raw",
]
HTTP_HEADERS = ["store", "usage events", "GET", "p50 ms", "p95 ms"]


def verdicts(projection: list[list[Any]], http: list[list[Any]]) -> list[str]:
    lines = []
    for row in projection:
        if row[0] == "postgres":
            met = "met" if row[5] >= TARGET_EVENTS_S else "NOT met"
            lines.append(
                f"target: catch-up >= {TARGET_EVENTS_S:,.0f} events/s on Postgres: "
                f"{row[5]:,.0f} events/s (median of the rounds), {met}"
            )
    for row in http:
        if row[0] == "postgres" and row[2] in ENDPOINTS:
            met = "met" if row[4] < TARGET_P95_MS else "NOT met"
            lines.append(
                f"target: GET {row[2]} p95 < {TARGET_P95_MS:.0f} ms on Postgres with "
                f"{row[1]:,} usage events: {row[4]:.1f} ms, {met}"
            )
    return lines or ["targets not measured (they need --store postgres)"]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin URL for a scratch database")
    p.add_argument("--usage", type=int, default=100_000, help="usage events in the store")
    p.add_argument("--tasks", type=int, default=200, help="tasks the usage is spread over")
    p.add_argument("--days", type=int, default=30, help="UTC days the usage is spread over")
    p.add_argument("--save", type=int, default=500, help="usage events per save (transaction)")
    p.add_argument(
        "--rounds", type=int, default=3, help="catch-ups from 0 (the views emptied between)"
    )
    p.add_argument("--requests", type=int, default=300, help="measured GETs per endpoint")
    p.add_argument("--warmup", type=int, default=30, help="unmeasured GETs before each endpoint")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    print(
        f"cost rollup benchmark on {machine()}; {args.usage:,} usage events over {args.tasks} "
        f"tasks and {args.days} days; {args.requests} GETs per endpoint, one keep-alive client\n"
    )
    started = time.perf_counter()
    common_env = {
        "TASKWARDEN_ADMIN_KEY": BENCH_ADMIN_KEY,
        "TASKWARDEN_RATE_LIMIT_ENABLED": "0",
        "TASKWARDEN_WORKERS": "0",
    }
    projection: list[list[Any]] = []
    http: list[list[Any]] = []
    if args.store in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="tw_bench_") as tmp:
            settings = Settings(data_dir=Path(tmp))
            p, h = run_store("sqlite", settings, common_env | {"TASKWARDEN_DATA_DIR": tmp}, args)
            projection.append(p)
            http += h
    if args.store in ("postgres", "both"):
        with scratch_database(args.postgres) as url, tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), database_url=url)
            env = common_env | {"TASKWARDEN_DATABASE_URL": url, "TASKWARDEN_DATA_DIR": tmp}
            p, h = run_store("postgres", settings, env, args)
            projection.append(p)
            http += h
    print(table(PROJECTION_HEADERS, projection))
    print()
    print(table(HTTP_HEADERS, http))
    print()
    for line in verdicts(projection, http):
        print(line)
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
