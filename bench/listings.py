"""Listings at scale (issue 14, item 3): a page of 50 tasks out of 100,000 (or 1,000,000 on
Postgres) plain, filtered by status, searched, and deep in the listing by cursor and by page
number, beside a bare Starlette endpoint in the same run, SQLite and Postgres.

    .venv/bin/python bench/listings.py [--store sqlite|postgres|both] [--tasks 100000]
        [--requests 300] [--warmup 30]
    .venv/bin/python bench/listings.py --store postgres --tasks 1000000
    .venv/bin/python bench/listings.py --seeded DIR-OR-POSTGRES-URL --tasks N  # seeded before

The tasks are written through the real event store and projected (``bench/seed_tasks.py``); the
real app then runs in a child process and one keep-alive client asks each path in turn
(``bench.costs``' servers and client). The deep pages are half way through the big project: the
cursor is the one a page-number read of that page answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DEFAULT_POSTGRES, machine, scratch_database, table
from bench.costs import BENCH_ADMIN_KEY, _p50_p95, latencies, serving
from bench.seed_tasks import SEARCHED, TEAM, report, seed
from infrastructure.settings import Settings
from infrastructure.views import open_read_model
from projections.rows import ProjectQuery

LIST_P95_MS = 10.0  # at 100,000 tasks, every listing
BIG_P95_MS = 20.0  # at 1,000,000 tasks on Postgres, filtered and searched
SIZE = 50


def paths(project_id: str, tasks: int, token: str, url: str) -> list[tuple[str, str]]:
    """(label, path) of each measured listing."""
    project = f"/api/projects/{project_id}/tasks?page_size={SIZE}"
    deep = max(1, tasks // SIZE // 2)
    found = httpx.get(
        f"{url}{project}&page={deep - 1}",
        headers={"authorization": f"Bearer {token}"},
        timeout=120,
    )
    found.raise_for_status()
    cursor = found.json()["data"]["next_cursor"]
    return [
        ("project, plain", project),
        ("team, plain", f"/api/tasks/?page_size={SIZE}"),
        ("project, status=completed", project + "&status=completed"),
        ("project, status=pending,cancelled", project + "&status=pending,cancelled"),
        ("project, sort=title asc", project + "&sort=title&order=asc"),
        (f"project, search={SEARCHED}", project + f"&search={SEARCHED}"),
        (f"project, cursor at page {deep}", project + f"&cursor={cursor}"),
        (f"project, page={deep}", project + f"&page={deep}"),
    ]


def token_for(url: str) -> str:
    minted = httpx.post(
        f"{url}/api/auth/token",
        json={"team_id": TEAM, "role": "viewer"},
        headers={"X-Admin-Key": BENCH_ADMIN_KEY},
        timeout=30,
    )
    minted.raise_for_status()
    return str(minted.json()["data"]["access_token"])


def run_store(
    name: str, settings: Settings, env: dict[str, str], args: argparse.Namespace
) -> list[list[Any]]:
    project_id = seeded_project(settings) if args.seeded else None
    if project_id is None:
        done = seed(settings, args.tasks)
        print(f"{name}: {report(done)}", flush=True)
        project_id = done.project_id
    rows: list[list[Any]] = []
    with serving("bare_app", env) as url:
        samples = asyncio.run(latencies(url, "/bare", "x" * 180, args.warmup, args.requests))
        rows.append([name, args.tasks, "bare /bare", *_p50_p95(samples), "-"])
    with serving("real_app", env) as url:
        token = token_for(url)
        for label, path in paths(project_id, args.tasks, token, url):
            count, warm = args.requests, args.warmup
            if "page=" in label:  # reads every row it skips: a few suffice
                count, warm = max(10, count // 10), 2
            samples = asyncio.run(latencies(url, path, token, warm, count))
            rows.append(
                [name, args.tasks, label, *_p50_p95(samples), answer_total(url, path, token)]
            )
    return rows


def seeded_project(settings: Settings) -> str | None:
    """The big project of a data set ``bench/seed_tasks.py`` wrote before, if there is one."""
    read_model = open_read_model(settings)
    try:
        read_model.migrate()
        found = read_model.list_projects(TEAM, ProjectQuery(search="big")).items
    finally:
        read_model.close()
    return found[0].id if found else None


def answer_total(url: str, path: str, token: str) -> str:
    """The page's total and whether it is exact, as the client reads them."""
    body = httpx.get(f"{url}{path}", headers={"authorization": f"Bearer {token}"}, timeout=60)
    data = json.loads(body.content)["data"]
    return f"{data['total']:,}{'' if data['total_exact'] else ' (est.)'}"


HEADERS = ["store", "tasks", "GET", "p50 ms", "p95 ms", "total"]


def verdicts(rows: list[list[Any]]) -> list[str]:
    lines = []
    for store, tasks, label, _, p95, _ in rows:
        if label.startswith("bare"):
            continue
        if tasks <= 100_000:
            target = LIST_P95_MS
        elif store == "postgres" and ("status=" in label or "search" in label):
            target = BIG_P95_MS
        else:
            continue
        met = "met" if p95 < target else "NOT met"
        lines.append(
            f"target: {label} p95 < {target:.0f} ms on {store} at {tasks:,}: {p95:.1f} ms, {met}"
        )
    return lines


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin URL for a scratch database")
    p.add_argument("--tasks", type=int, default=100_000)
    p.add_argument("--requests", type=int, default=300, help="measured GETs per path")
    p.add_argument("--warmup", type=int, default=30, help="unmeasured GETs before each path")
    p.add_argument(
        "--seeded",
        default=None,
        help="measure the tasks bench/seed_tasks.py wrote before: a data directory (SQLite) or "
        "a Postgres URL, instead of seeding a scratch one (--tasks: how many it holds)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    print(f"listing benchmark on {machine()}; {args.tasks:,} tasks; one keep-alive client\n")
    started = time.perf_counter()
    common_env = {
        "TASKWARDEN_ADMIN_KEY": BENCH_ADMIN_KEY,
        "TASKWARDEN_RATE_LIMIT_ENABLED": "0",
        "TASKWARDEN_WORKERS": "0",
    }
    rows: list[list[Any]] = []
    if args.seeded:
        url = args.seeded if args.seeded.startswith("postgres") else None
        data = Path(tempfile.mkdtemp(prefix="tw_bench_")) if url else Path(args.seeded)
        env = common_env | {"TASKWARDEN_DATA_DIR": str(data)}
        env |= {"TASKWARDEN_DATABASE_URL": url} if url else {}
        settings = Settings(data_dir=data, database_url=url)
        rows += run_store("postgres" if url else "sqlite", settings, env, args)
    elif args.store in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="tw_bench_") as tmp:
            settings = Settings(data_dir=Path(tmp))
            rows += run_store("sqlite", settings, common_env | {"TASKWARDEN_DATA_DIR": tmp}, args)
    if not args.seeded and args.store in ("postgres", "both"):
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
