"""HTTP load on the hot paths (issue 14, items 1 and 6): create, get by id, list (plain, filtered,
searched) and history against the real app, each beside a bare Starlette endpoint in the same
run, with server CPU per request and the API process's RSS, SQLite and Postgres.

    .venv/bin/python bench/http_load.py [--store sqlite|postgres|both] [--duration 8]
        [--connections 16,64] [--tasks 2500] [--client auto|wrk|raw] [--quick]
        [--paths create,list,...] [--profile]

The load generator is wrk (``wrk -t2 -cN -dDs --latency`` with a Lua script per request shape,
see ``bench/wrk.py``) when it is installed (``make bench`` installs the Debian package), else
the raw keep-alive client of ``bench/common.py`` (one asyncio connection per wrk connection, in
this process: its figures are lower than wrk's for the bare endpoint, compare within a run only).

Both servers run at once, each in a child process under uvicorn (``bench.create_tasks``'
``real_app``: the app as deployed, rate limits off, no workers), and are driven one after the
other, so that each figure of the app sits beside the bare endpoint's from the same minute. The
bare endpoint decodes a create body into the same ``CreateTask`` Struct and answers a small JSON
for any GET. A project is seeded with ``--tasks`` tasks through the API (priorities in turn, one
title in ten has the word searched for, the task whose history is read has 20 updates), the
projection runner catches up, then every level runs the reads on that project and the creates
into another one (so that the listings keep their size); after the creates the runner catches up
again before the next level.

Server CPU per request is the child's user + system time from ``/proc/<pid>/stat`` before and
after a run, over the requests wrk completed; RSS is the child's ``VmHWM`` (peak) over the run,
after resetting it through ``/proc/<pid>/clear_refs`` (when that is not writable: the peak since
start), and ``VmRSS`` and the thread count (``threads``) at the end.

``--paths`` measures only the named request shapes (``create``; ``get``, ``list``, ``list
filtered``, ``list searched``, ``history``); ``--profile`` samples the app process with py-spy
(``bench/profiling.py``, GIL-holding samples only) during each of its measured runs and prints
where its time went after the run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import httpx
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from application.commands import CreateTask
from bench import wrk
from bench.common import (
    DEFAULT_POSTGRES,
    KeepAliveConnection,
    machine,
    percentile,
    scratch_database,
    server_in_process,
    table,
)
from bench.create_tasks import BENCH_ADMIN_KEY, cpu_seconds, new_project
from bench.profiling import start_profile, stop_profile

SEARCH_WORD = "login"
PRIORITIES = ("low", "normal", "high", "urgent")
HISTORY_UPDATES = 20
COUNTER = "@N@"
PATHS = ("get", "list", "list filtered", "list searched", "history", "create")

# the targets (issue 14, items 2, 3 and 6)
TARGET_CREATE_CPU_MS = 0.45
TARGET_CREATE_RATIO = 0.33
TARGET_CREATE_P99_MS = 50.0
PEER_LIST_RATE = (352 + 361 + 317) / 3  # seed 003's list req/s at 16 connections, in the issue
TARGET_LIST_VS_PEER = 3.0
TARGET_RSS_MB = 150.0


# ---- the bare endpoint (a uvicorn factory) ----------------------------------------------------


def bare_app() -> Starlette:
    decoder = msgspec.json.Decoder(CreateTask)
    encoder = msgspec.json.Encoder()

    async def create(request: Request) -> Response:
        cmd = decoder.decode(await request.body())
        body = {"data": {"id": str(uuid4()), "title": cmd.title}, "error": None}
        return Response(encoder.encode(body), 201, media_type="application/json")

    async def read(request: Request) -> Response:
        body = {"data": {"id": "0b7e", "title": "bare", "status": "pending"}, "error": None}
        return Response(encoder.encode(body), media_type="application/json")

    async def health(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/api/tasks/", create, methods=["POST"]),
            Route("/{rest:path}", read),
        ]
    )


# ---- the process's figures --------------------------------------------------------------------


def memory_mb(pid: int) -> tuple[float, float] | None:
    """``VmRSS`` and ``VmHWM`` (peak) of a process in MB (Linux), or None."""
    values = _status(pid)
    if "VmRSS" not in values or "VmHWM" not in values:
        return None
    return values["VmRSS"] / 1024, values["VmHWM"] / 1024  # kB


def threads(pid: int) -> int | None:
    """The process's thread count (Linux), or None."""
    count = _status(pid).get("Threads")
    return None if count is None else int(count)


def _status(pid: int) -> dict[str, float]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM", "Threads"):
            values[name] = int(rest.split()[0])
    return values


def reset_peak(pid: int) -> bool:
    """Resets the process's ``VmHWM`` to its current RSS (Linux >= 4.0, owner or root)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# ---- the request shapes -----------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """One kind of request: ``method path`` with ``body`` (``COUNTER`` made unique per request)."""

    name: str
    method: str
    path: str
    body: str = ""

    @property
    def counted(self) -> bool:
        return COUNTER in self.body


def app_shapes(project_id: str, create_project_id: str, task_id: str) -> list[Shape]:
    listing = f"/api/projects/{project_id}/tasks"
    create = msgspec.json.encode(
        {"title": f"wrk task {COUNTER}", "project_id": create_project_id, "priority": "high"}
    ).decode()
    return [
        Shape("get", "GET", f"/api/tasks/{task_id}"),
        Shape("list", "GET", f"{listing}?page_size=50"),
        Shape("list filtered", "GET", f"{listing}?page_size=50&status=pending&priority=high"),
        Shape("list searched", "GET", f"{listing}?page_size=50&search={quote(SEARCH_WORD)}"),
        Shape("history", "GET", f"/api/tasks/{task_id}/history"),
        Shape("create", "POST", "/api/tasks/", create),
    ]


def bare_shape(shape: Shape) -> Shape:
    """What the bare endpoint is given beside ``shape``: the same request."""
    return Shape(f"bare {shape.method}", shape.method, shape.path, shape.body)


# ---- the load generators ----------------------------------------------------------------------


Drive = Callable[[str, Shape, int, float], wrk.WrkFigures]


def wrk_driver(binary: str, scripts: Path, token: str) -> Drive:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}

    def drive(url: str, shape: Shape, connections: int, seconds: float) -> wrk.WrkFigures:
        text = wrk.script(
            shape.method,
            shape.path,
            headers,
            shape.body,
            COUNTER if shape.counted else None,
        )
        path = wrk.write_script(scripts, f"shape-{uuid4().hex[:8]}", text)
        argv = wrk.command(binary, url, path, connections, seconds)
        done = subprocess.run(
            argv, check=False, capture_output=True, text=True, timeout=seconds + 60
        )
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
        return wrk.parse(done.stdout)

    return drive


def raw_driver(token: str) -> Drive:
    def drive(url: str, shape: Shape, connections: int, seconds: float) -> wrk.WrkFigures:
        return asyncio.run(_raw(url, shape, connections, seconds, token))

    return drive


async def _raw(
    url: str, shape: Shape, connections: int, seconds: float, token: str
) -> wrk.WrkFigures:
    headers = {"authorization": f"Bearer {token}"}
    conns = [await KeepAliveConnection.open(url) for _ in range(connections)]
    latencies: list[float] = []
    errors = 0

    async def worker(index: int, conn: KeepAliveConnection) -> None:
        nonlocal errors
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            body = shape.body.replace(COUNTER, f"{index}-{n}").encode()
            sent = time.perf_counter()
            status, _ = await conn.request(shape.method, shape.path, body, headers)
            latencies.append(time.perf_counter() - sent)
            errors += status >= 400

    started = time.perf_counter()
    deadline = started + seconds
    try:
        await asyncio.gather(*(worker(i, c) for i, c in enumerate(conns)))
    finally:
        for conn in conns:
            await conn.close()
    elapsed = time.perf_counter() - started
    return wrk.WrkFigures(
        requests=len(latencies),
        seconds=elapsed,
        errors=errors,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p95_ms=percentile(latencies, 0.95) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        max_ms=max(latencies, default=0.0) * 1000,
    )


# ---- one measured run -------------------------------------------------------------------------


@dataclass
class Run:
    figures: wrk.WrkFigures
    cpu_ms: float | None
    peak_mb: float | None
    rss_mb: float | None
    threads: int | None = None


def measured(  # noqa: PLR0913
    drive: Drive,
    url: str,
    pid: int,
    shape: Shape,
    conns: int,
    seconds: float,
    profile: argparse.Namespace | None = None,
) -> Run:
    """One run of ``shape``; with ``profile`` (the options), sampled by py-spy and printed."""
    reset_peak(pid)
    profiler = start_profile(pid, profile) if profile is not None else None
    before = cpu_seconds(pid)
    figures = drive(url, shape, conns, seconds)
    after = cpu_seconds(pid)
    if profiler is not None:
        print(f"  py-spy, {shape.name} at {conns} connections:\n{stop_profile(profiler)}\n")
    memory = memory_mb(pid)
    cpu_ms = None
    if before is not None and after is not None and figures.requests:
        cpu_ms = (after - before) * 1000 / figures.requests
    return Run(
        figures,
        cpu_ms,
        peak_mb=memory[1] if memory else None,
        rss_mb=memory[0] if memory else None,
        threads=threads(pid),
    )


# ---- seeding and catching up ------------------------------------------------------------------


def seed(url: str, project_id: str, token: str, count: int) -> str:
    """``count`` tasks in the project through the API; the id of the one given a history."""
    return asyncio.run(_seed(url, project_id, token, count))


async def _seed(url: str, project_id: str, token: str, count: int) -> str:
    headers = {"authorization": f"Bearer {token}"}
    conns = [await KeepAliveConnection.open(url) for _ in range(16)]
    numbers = iter(range(count))
    first: list[str] = []

    async def worker(conn: KeepAliveConnection) -> None:
        for i in numbers:
            title = f"seed task {i}" + (f" {SEARCH_WORD} page" if i % 10 == 0 else "")
            body = {
                "title": title,
                "project_id": project_id,
                "priority": PRIORITIES[i % len(PRIORITIES)],
                "tags": ["bench", f"t{i % 7}"],
            }
            status, answer = await conn.request(
                "POST", "/api/tasks/", msgspec.json.encode(body), headers
            )
            if status != 201:
                raise RuntimeError(f"seeding: {status} {answer[:300]!r}")
            if i == 0:
                first.append(msgspec.json.decode(answer)["data"]["id"])

    try:
        await asyncio.gather(*(worker(c) for c in conns))
        task_id = first[0]
        for n in range(HISTORY_UPDATES):
            body = msgspec.json.encode({"description": f"revision {n}", "progress_percentage": n})
            status, answer = await conns[0].request("PATCH", f"/api/tasks/{task_id}", body, headers)
            if status != 200:
                raise RuntimeError(f"updating: {status} {answer[:300]!r}")
    finally:
        for conn in conns:
            await conn.close()
    return task_id


def listed(url: str, project_id: str, token: str) -> int:
    response = httpx.get(
        f"{url}/api/projects/{project_id}/tasks?page_size=1",
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()
    return int(response.json()["data"]["total"])


def projection_lag(url: str) -> int:
    """Events written but not yet applied by the projection runner (``/metrics``)."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    for line in text.splitlines():
        if line.startswith("taskwarden_projection_lag "):
            return int(float(line.split()[1]))
    raise RuntimeError("/metrics has no taskwarden_projection_lag")


def caught_up(url: str, project_id: str, token: str, expected: int, timeout: float = 180) -> float:
    """Waits until the project lists at least ``expected`` tasks, or as many as the listing
    counts exactly, and the runner has applied every event written (``/metrics``: a listing's
    total is exact only up to a bound); the seconds."""
    started = time.monotonic()
    while listed(url, project_id, token) < min(expected, 1_000) or projection_lag(url) > 0:
        if time.monotonic() - started > timeout:
            print(f"  (the read model had not caught up after {timeout:.0f} s; going on)")
            break
        time.sleep(0.2)
    return time.monotonic() - started


# ---- one store --------------------------------------------------------------------------------


@dataclass
class Row:
    store: str
    path: str
    conns: int
    app: Run
    bare: Run


def run_store(
    store: str, env: dict[str, str], args: argparse.Namespace, drive_for: Callable[[str], Drive]
) -> tuple[list[Row], dict[str, Any]]:
    notes: dict[str, Any] = {}
    with ExitStack() as stack:
        bare_url, bare_pid = stack.enter_context(server_in_process("bench.http_load:bare_app", env))
        app_url, app_pid = stack.enter_context(
            server_in_process("bench.create_tasks:real_app", env)
        )
        project_id, token = new_project(app_url)
        create_project_id = _project(app_url, token, "bench creates")
        started = time.perf_counter()
        task_id = seed(app_url, project_id, token, args.tasks)
        notes["seed_s"] = time.perf_counter() - started
        notes["seed_catch_up_s"] = caught_up(app_url, project_id, token, args.tasks)
        notes["rss_after_seed"] = memory_mb(app_pid)
        drive = drive_for(token)
        shapes = [
            s
            for s in app_shapes(project_id, create_project_id, task_id)
            if not args.paths or s.name in args.paths
        ]
        creates = 0
        rows: list[Row] = []
        if args.warmup > 0:
            for shape in shapes:
                warm = drive(app_url, shape, args.connections[0], args.warmup)
                creates += (warm.requests - warm.errors) if shape.name == "create" else 0
                drive(bare_url, bare_shape(shape), args.connections[0], args.warmup)
        for conns in args.connections:
            bare_runs: dict[str, Run] = {}
            for shape in shapes:
                bare = bare_runs.get(shape.method)
                if bare is None:
                    bare = measured(
                        drive, bare_url, bare_pid, bare_shape(shape), conns, args.duration
                    )
                    bare_runs[shape.method] = bare
                profile = args if args.profile else None
                app = measured(drive, app_url, app_pid, shape, conns, args.duration, profile)
                rows.append(Row(store, shape.name, conns, app, bare))
                print(f"  {store} {shape.name} at {conns}: {app.figures.rate:,.0f} req/s")
                if shape.name == "create":
                    creates += app.figures.requests - app.figures.errors
                    waited = caught_up(app_url, create_project_id, token, creates)
                    notes[f"create_catch_up_s_{conns}"] = waited
        notes["rss_end"] = memory_mb(app_pid)
        notes["bare_rss_end"] = memory_mb(bare_pid)
    return rows, notes


def _project(url: str, token: str, name: str) -> str:
    response = httpx.post(
        f"{url}/api/projects/",
        json={"name": name},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["data"]["id"])


# ---- the report -------------------------------------------------------------------------------


HEADERS = [
    "path",
    "conns",
    "req/s",
    "bare req/s",
    "app/bare",
    "p50 ms",
    "bare p50",
    "p95 ms",
    "p99 ms",
    "bare p99",
    "CPU ms/req",
    "bare CPU",
    "peak RSS MB",
    "threads",
    "errors",
]


def report_rows(rows: list[Row]) -> list[list[Any]]:
    out = []
    for r in rows:
        a, b = r.app.figures, r.bare.figures
        out.append(
            [
                r.path,
                r.conns,
                a.rate,
                b.rate,
                a.rate / b.rate if b.rate else float("nan"),
                a.p50_ms,
                b.p50_ms,
                a.p95_ms,
                a.p99_ms,
                b.p99_ms,
                _dash(r.app.cpu_ms),
                _dash(r.bare.cpu_ms),
                _dash(r.app.peak_mb),
                _dash(r.app.threads),
                a.errors + b.errors,
            ]
        )
    return out


def _dash(value: float | None) -> float | str:
    return "-" if value is None else value


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def targets(rows: list[Row], tasks: int) -> list[str]:
    """The issue's targets as far as this run measures them, each met or NOT met."""
    lines = []
    for r in rows:
        a, b = r.app, r.bare
        where = f"{r.store}, {r.conns} connections"
        if r.path == "create":
            if a.cpu_ms is not None:
                lines.append(
                    f"create server CPU <= {TARGET_CREATE_CPU_MS} ms/request ({where}): "
                    f"{a.cpu_ms:.2f} ms, {_met(a.cpu_ms <= TARGET_CREATE_CPU_MS)}"
                )
            ratio = a.figures.rate / b.figures.rate if b.figures.rate else 0.0
            lines.append(
                f"create req/s / bare req/s >= {TARGET_CREATE_RATIO} ({where}): {ratio:.3f}, "
                f"{_met(ratio >= TARGET_CREATE_RATIO)}"
            )
            if r.store == "postgres" and r.conns == 64:
                p99 = a.figures.p99_ms
                lines.append(
                    f"create p99 < {TARGET_CREATE_P99_MS:.0f} ms at 64 connections on Postgres: "
                    f"{p99:.1f} ms, {_met(p99 < TARGET_CREATE_P99_MS)}"
                )
        elif r.path == "list" and r.conns == 16:
            want = TARGET_LIST_VS_PEER * PEER_LIST_RATE
            lines.append(
                f"list req/s >= {TARGET_LIST_VS_PEER:.0f}x seed 003 peer's {PEER_LIST_RATE:.0f}"
                f" = {want:.0f} (issue's figure, not re-measured here) ({where}): "
                f"{a.figures.rate:,.0f}, {_met(a.figures.rate >= want)}"
            )
    if any(r.path.startswith("list") for r in rows):
        lines.append(
            "list p95 < 10 ms at 100,000 tasks, filtered and searched p95 < 20 ms at 1,000,000: "
            "measured by bench/listings.py (one client at a time); a p95 here, with every "
            "connection asking at once, is mostly the wait behind the others"
        )
    peaks = [r.app.peak_mb for r in rows if r.app.peak_mb is not None]
    for store in dict.fromkeys(r.store for r in rows):
        store_peaks = [r.app.peak_mb for r in rows if r.store == store and r.app.peak_mb]
        if store_peaks:
            peak = max(store_peaks)
            lines.append(
                f"API process RSS under load < {TARGET_RSS_MB:.0f} MB ({store}, peak VmHWM over "
                f"every run): {peak:.1f} MB, {_met(peak < TARGET_RSS_MB)}"
            )
    if not peaks:
        lines.append("API process RSS: not measured (no /proc)")
    return lines


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# ---- the command ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin URL for a scratch database")
    p.add_argument("--duration", type=float, default=8.0, help="seconds per measured run")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per path, first")
    p.add_argument("--connections", default="16,64", help="comma list of connection counts")
    p.add_argument("--tasks", type=int, default=2500, help="tasks seeded in the listed project")
    p.add_argument("--client", choices=["auto", "wrk", "raw"], default="auto")
    p.add_argument("--quick", action="store_true", help="a smoke run: 1 s runs, 300 tasks")
    p.add_argument("--paths", default="", help="comma list of the request shapes to measure")
    p.add_argument("--profile", action="store_true", help="py-spy on the app during its runs")
    args = p.parse_args(argv)
    args.paths = [n.strip() for n in args.paths.split(",") if n.strip()]
    unknown = set(args.paths) - set(PATHS)
    if unknown:
        p.error(f"--paths: unknown {sorted(unknown)}; known: {', '.join(PATHS)}")
    try:
        args.connections = [int(c) for c in args.connections.split(",") if c]
    except ValueError:
        p.error(f"--connections takes a comma list of numbers: {args.connections!r}")
    if not args.connections or min(args.connections) < 1:
        p.error("--connections needs positive counts")
    if args.quick:
        args.duration, args.warmup, args.tasks = 1.0, 0.0, min(args.tasks, 300)
    if args.tasks < 1:
        p.error("--tasks must be at least 1")
    return args


@contextmanager
def drivers(kind: str) -> Iterator[tuple[str, Callable[[str], Drive]]]:
    binary = wrk.installed() if kind in ("auto", "wrk") else None
    if kind == "wrk" and binary is None:
        raise SystemExit("wrk is not installed (apt-get install wrk, or --client raw)")
    if binary is None:
        why = "--client raw" if kind == "raw" else "wrk not installed"
        yield f"raw keep-alive client (bench/common.py; {why})", raw_driver
        return
    with tempfile.TemporaryDirectory(prefix="tw_wrk_") as scripts:
        yield f"wrk ({binary}), 2 threads", lambda token: wrk_driver(binary, Path(scripts), token)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    common_env = {
        "TASKWARDEN_RUN_PROJECTIONS": "1",
        "TASKWARDEN_ADMIN_KEY": BENCH_ADMIN_KEY,
        "TASKWARDEN_RATE_LIMIT_ENABLED": "0",
        "TASKWARDEN_WORKERS": "0",
    }
    with drivers(args.client) as (client, drive_for):
        print(
            f"HTTP load on {machine()}; load generator: {client}; {args.duration:g} s per run, "
            f"connections {args.connections}, {args.tasks:,} tasks listed\n"
            f"load average at start: {load_average()}\n"
        )
        results: list[tuple[str, list[Row], dict[str, Any]]] = []
        if args.store in ("sqlite", "both"):
            with tempfile.TemporaryDirectory(prefix="tw_bench_") as tmp:
                env = common_env | {"TASKWARDEN_DATA_DIR": tmp}
                results.append(("sqlite", *run_store("sqlite", env, args, drive_for)))
        if args.store in ("postgres", "both"):
            with scratch_database(args.postgres) as url, tempfile.TemporaryDirectory() as tmp:
                env = common_env | {"TASKWARDEN_DATABASE_URL": url, "TASKWARDEN_DATA_DIR": tmp}
                results.append(("postgres", *run_store("postgres", env, args, drive_for)))
    print()
    all_rows: list[Row] = []
    for store, rows, notes in results:
        all_rows += rows
        print(f"### {store}\n")
        print(table(HEADERS, report_rows(rows)))
        print()
        print(_notes(notes))
        print()
    print("targets (issue 14):")
    for line in targets(all_rows, args.tasks):
        print(f"- {line}")
    print(f"\nload average at end: {load_average()}")
    print(f"total {time.perf_counter() - started:.1f} s")


def _notes(notes: dict[str, Any]) -> str:
    parts = [
        f"seeded in {notes['seed_s']:.1f} s, read model caught up {notes['seed_catch_up_s']:.1f} s "
        "later"
    ]
    for key, value in notes.items():
        if key.startswith("create_catch_up_s_"):
            parts.append(
                f"after the creates at {key.rsplit('_', 1)[1]}: caught up in {value:.1f} s"
            )
    for key, label in (
        ("rss_after_seed", "app RSS after seeding"),
        ("rss_end", "app RSS at the end"),
        ("bare_rss_end", "bare endpoint RSS at the end"),
    ):
        if notes.get(key):
            rss, hwm = notes[key]
            parts.append(f"{label} {rss:.1f} MB (peak since the last reset {hwm:.1f} MB)")
    return "; ".join(parts)


if __name__ == "__main__":
    main()
