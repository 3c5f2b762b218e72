"""POST /api/tasks/ throughput and latency against the real app, beside a bare Starlette endpoint.

    .venv/bin/python bench/create_tasks.py [--store sqlite|postgres|both] [--clients 1,16,64]
        [--requests 600] [--warmup 50] [--server process|thread] [--client httpx|raw]
        [--server-workers 1,2]

Both servers run under uvicorn on 127.0.0.1 with the same settings (log level warning). By default
each runs in a child process, so that the server does not share a GIL with the load generator
(httpx.AsyncClient, connection limit equal to the number of clients). The bare endpoint decodes the
same JSON into the same ``CreateTask`` Struct with msgspec and answers a small JSON: the gap between
the two is what the app does per request (handlers, group commit, event store, projections).

httpx costs about 1 ms of client CPU per request, and its shared pool degrades badly with many
concurrent requests (bare endpoint p99 well over 100 ms at 16 clients on 2 cores), so a second
load generator, ``--client raw`` (one keep-alive HTTP/1.1 connection per client on asyncio
streams, about 0.04 ms per request), shows what belongs to the server.

``--server-workers 1,2`` (Postgres only) serves the app with ``taskwarden serve --workers N``
for each N (NATS configured, as that needs; nothing here relays or subscribes), beside the bare
endpoint under ``uvicorn --workers N``; the CPU per request is that of every process serving.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from application.commands import CreateTask
from bench.common import (
    DEFAULT_POSTGRES,
    ROOT,
    KeepAliveConnection,
    free_port,
    machine,
    percentile,
    scratch_database,
    server_in_process,
    server_in_thread,
    table,
    wait_until_healthy,
)
from infrastructure.settings import Settings

TARGET_P99_MS = 50.0
TARGET_CLIENTS = 16


# ---- the two servers (uvicorn factories) ------------------------------------------------------


def real_app() -> Starlette:
    """The app as deployed, configured from TASKWARDEN_* variables, tables migrated at start."""
    from interfaces.http.app import create_app  # noqa: PLC0415 - only the server needs it

    return create_app(Settings.from_env(), migrate_first=True, settle=True)  # as served


def bare_app() -> Starlette:
    decoder = msgspec.json.Decoder(CreateTask)
    encoder = msgspec.json.Encoder()

    async def create(request: Request) -> Response:
        cmd = decoder.decode(await request.body())
        body = {"data": {"id": str(uuid4()), "title": cmd.title}, "error": None}
        return Response(encoder.encode(body), 201, media_type="application/json")

    async def health(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return Starlette(
        routes=[Route("/api/tasks/", create, methods=["POST"]), Route("/health", health)]
    )


@contextmanager
def serving(name: str, env: dict[str, str], mode: str) -> Iterator[tuple[str, int | None]]:
    """Yields the base URL and, for a child process, its pid (to read its CPU time)."""
    if mode == "process":
        with server_in_process(f"bench.create_tasks:{name}", env) as (url, pid):
            yield url, pid
        return
    previous = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with server_in_thread(real_app() if name == "real_app" else bare_app()) as url:
            yield url, None
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def serving_workers(name: str, env: dict[str, str], workers: int) -> Iterator[tuple[str, int]]:
    """The app by ``taskwarden serve --workers N``, or the bare endpoint by ``uvicorn --workers
    N``; yields the base URL and the pid of the process whose descendants serve."""
    if name == "bare_app":
        with server_in_process(f"bench.create_tasks:{name}", env, ["--workers", str(workers)]) as (
            url,
            pid,
        ):
            yield url, pid
        return
    port = free_port()
    binary = str(Path(sys.executable).parent / "taskwarden")
    child_env = os.environ | env
    subprocess.run([binary, "migrate"], env=child_env, check=True, capture_output=True)
    argv = [binary, "serve", "--workers", str(workers), "--host", "127.0.0.1", "--port", str(port)]
    quiet = subprocess.DEVNULL  # an access log line per request
    process = subprocess.Popen(argv, cwd=ROOT, env=child_env, stdout=quiet, stderr=quiet)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", timeout=90, process=process)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=60)


def cpu_seconds(pid: int | None) -> float | None:
    """User plus system CPU time of a process and its descendants alive (Linux), or None."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = [
            int(c)
            for t in Path(f"/proc/{pid}/task").iterdir()
            for c in (t / "children").read_text().split()
        ]
    except OSError:
        return None
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(child) or 0.0 for child in children)


# ---- the load ---------------------------------------------------------------------------------


@dataclass
class Level:
    clients: int
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms: float | None = None


Send = Callable[[bytes], Awaitable[int]]


@asynccontextmanager
async def senders(url: str, clients: int, kind: str, token: str) -> AsyncIterator[list[Send]]:
    """One ``send(body) -> status`` per client.

    ``httpx``: one shared AsyncClient whose pool holds ``clients`` connections. ``raw``: one
    keep-alive connection per client, speaking just enough HTTP/1.1 (a near-free client).
    """
    if kind == "raw":
        conns = [await KeepAliveConnection.open(url) for _ in range(clients)]
        try:
            yield [partial(c.post, "/api/tasks/", token=token) for c in conns]
        finally:
            for c in conns:
                await c.close()
        return
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def send(body: bytes) -> int:
            headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
            response = await client.post("/api/tasks/", content=body, headers=headers)
            return response.status_code

        yield [send] * clients


async def _drive(sends: list[Send], bodies: list[bytes]) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    cursor = iter(bodies)

    async def worker(send: Send) -> None:
        nonlocal errors
        for body in cursor:
            started = time.perf_counter()
            status = await send(body)
            latencies.append(time.perf_counter() - started)
            errors += status != 201

    started = time.perf_counter()
    await asyncio.gather(*(worker(send) for send in sends))
    return time.perf_counter() - started, latencies, errors


async def load(
    url: str, project_id: str, token: str, clients: int, args: argparse.Namespace
) -> Level:
    async with senders(url, clients, args.client, token) as sends:
        await _drive(sends, bodies(project_id, warmups(args, clients)))
        seconds, latencies, errors = await _drive(sends, bodies(project_id, args.requests))
    return Level(
        clients=clients,
        rate=args.requests / seconds,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        errors=errors,
    )


def warmups(args: argparse.Namespace, clients: int) -> int:
    return max(args.warmup, 2 * clients)


def bodies(project_id: str, count: int) -> list[bytes]:
    return [
        msgspec.json.encode({"title": f"bench task {uuid4().hex[:8]}", "project_id": project_id})
        for _ in range(count)
    ]


BENCH_ADMIN_KEY = "bench-admin-key-not-a-secret"


def new_project(url: str) -> tuple[str, str]:
    """A project to fill, and an operator token for the benchmark's team (minted by admin key)."""
    minted = httpx.post(
        f"{url}/api/auth/token",
        json={"team_id": "bench", "role": "operator"},
        headers={"X-Admin-Key": BENCH_ADMIN_KEY},
        timeout=30,
    )
    minted.raise_for_status()
    token = minted.json()["data"]["access_token"]
    response = httpx.post(
        f"{url}/api/projects/",
        json={"name": "bench"},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["data"]["id"]), token


def measure(
    url: str, pid: int | None, project_id: str, token: str, args: argparse.Namespace
) -> list[Level]:
    levels = []
    for clients in args.clients:
        before = cpu_seconds(pid)
        level = asyncio.run(load(url, project_id, token, clients, args))
        after = cpu_seconds(pid)
        if before is not None and after is not None:
            level.cpu_ms = (after - before) * 1000 / (args.requests + warmups(args, clients))
        levels.append(level)
    return levels


# ---- one store --------------------------------------------------------------------------------


def run_store(
    store: str, env: dict[str, str], args: argparse.Namespace, workers: int = 0
) -> list[list[Any]]:
    """``workers``: served by that many processes (``serving_workers``); 0: ``serving``."""

    def served(name: str) -> Any:
        return serving_workers(name, env, workers) if workers else serving(name, env, args.server)

    with served("bare_app") as (url, pid):
        # the bare endpoint gets the same header bytes; it does not verify them
        bare = measure(url, pid, str(uuid4()), "x" * 180, args)
    with served("real_app") as (url, pid):
        project_id, token = new_project(url)
        app = measure(url, pid, project_id, token, args)
    store = f"{store} x{workers}" if workers else store
    rows = []
    for a, b in zip(app, bare):
        rows.append(
            [
                store,
                a.clients,
                a.rate,
                a.p50_ms,
                a.p99_ms,
                _or_dash(a.cpu_ms),
                b.rate,
                b.p50_ms,
                b.p99_ms,
                _or_dash(b.cpu_ms),
                a.rate / b.rate,
                a.p99_ms / b.p99_ms,
                a.errors + b.errors,
            ]
        )
    return rows


def _or_dash(value: float | None) -> float | str:
    return "-" if value is None else value


HEADERS = [
    "store",
    "clients",
    "app req/s",
    "app p50 ms",
    "app p99 ms",
    "app CPU ms/req",
    "bare req/s",
    "bare p50 ms",
    "bare p99 ms",
    "bare CPU ms/req",
    "app/bare req/s",
    "app/bare p99",
    "errors",
]


def verdict(rows: list[list[Any]]) -> str:
    for row in rows:
        if row[0] == "postgres" and row[1] == TARGET_CLIENTS:
            app_p99, bare_p99 = row[4], row[8]
            met = "met" if app_p99 < TARGET_P99_MS else "NOT met"
            line = (
                f"target: create p99 < {TARGET_P99_MS:.0f} ms at {TARGET_CLIENTS} clients on "
                f"Postgres: {app_p99:.1f} ms, {met}"
            )
            if bare_p99 > TARGET_P99_MS / 2:
                line += (
                    f" (but the bare endpoint's p99 is {bare_p99:.1f} ms: the load generator "
                    "dominates these latencies; compare with --client raw)"
                )
            return line
    return f"target not measured (needs --store postgres and {TARGET_CLIENTS} in --clients)"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin URL for a scratch database")
    p.add_argument("--clients", default="1,16,64", help="comma list of concurrency levels")
    p.add_argument("--requests", type=int, default=600, help="measured requests per level")
    p.add_argument("--warmup", type=int, default=50, help="unmeasured requests before each level")
    p.add_argument("--server", choices=["process", "thread"], default="process")
    p.add_argument(
        "--client", choices=["httpx", "raw"], default="httpx", help="load generator (see above)"
    )
    p.add_argument("--no-projections", action="store_true", help="run the app without its runner")
    p.add_argument(
        "--rate-limits",
        action="store_true",
        help="count every request as deployed (limits too high to refuse): the limiter's cost",
    )
    p.add_argument(
        "--server-workers",
        default="",
        help="comma list of process counts: Postgres served by taskwarden serve --workers N",
    )
    p.add_argument("--nats", default="nats://127.0.0.1:4222", help="for --server-workers")
    args = p.parse_args(argv)
    args.clients = [int(c) for c in args.clients.split(",") if c]
    args.server_workers = [int(n) for n in args.server_workers.split(",") if n]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    print(
        f"create-task benchmark on {machine()}; server in a {args.server}, {args.client} client, "
        f"{args.requests} requests per level after {args.warmup} warm-up\n"
    )
    started = time.perf_counter()
    common_env = {
        "TASKWARDEN_RUN_PROJECTIONS": "0" if args.no_projections else "1",
        "TASKWARDEN_ADMIN_KEY": BENCH_ADMIN_KEY,
        # by default the write path alone; --rate-limits counts every request, never refusing
        "TASKWARDEN_RATE_LIMIT_ENABLED": "1" if args.rate_limits else "0",
        "TASKWARDEN_RATE_LIMIT_USER": str(10**9),
        "TASKWARDEN_RATE_LIMIT_ANONYMOUS": str(10**9),
        "TASKWARDEN_WORKERS": "0",  # nothing runs the created tasks: the API alone
    }
    rows: list[list[Any]] = []
    if args.store in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="tw_bench_") as tmp:
            rows += run_store("sqlite", common_env | {"TASKWARDEN_DATA_DIR": tmp}, args)
    if args.store in ("postgres", "both"):
        with scratch_database(args.postgres) as url, tempfile.TemporaryDirectory() as tmp:
            env = common_env | {"TASKWARDEN_DATABASE_URL": url, "TASKWARDEN_DATA_DIR": tmp}
            if not args.server_workers:
                rows += run_store("postgres", env, args)
            for workers in args.server_workers:
                stream = {"TASKWARDEN_NATS_URL": args.nats, "TASKWARDEN_NATS_STREAM": "TWBENCH"}
                rows += run_store("postgres", env | stream, args, workers)
    print(table(HEADERS, rows))
    print()
    print(verdict(rows))
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
