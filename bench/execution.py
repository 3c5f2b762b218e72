"""The execution engine: enqueue-to-start, cancel-to-exit and scripted runs per second, each beside
a floor measured in the same run, on SQLite and Postgres.

    .venv/bin/python bench/execution.py [--store sqlite|postgres|both] [--postgres ADMIN_URL]
        [--database-url URL] [--runs 100] [--cancels 20] [--tasks 200] [--workers 2,4]
        [--throughput-workers 4] [--warmup 5] [--cases start,split,cancel,throughput]
        [--nats nats://127.0.0.1:4222]

Everything runs in this process, as in embedded mode: ``interfaces.services.build``, the relay
(publishing to the in-process bus) and an ``ExecutionHost`` (in-process workers, the sweeper and
the cancel watch) on an asyncio loop in its own thread, with the bundled scripted agent
(``python -m infrastructure.agent.scripted``). Commands go through the application functions
(``create_task``, ``request_execution``, ``cancel_task``) from the main thread, as an HTTP
handler's worker thread would call them; no HTTP, no authentication.

1. **enqueue -> start**: one task at a time, the workers idle, script ``[{"say": "hi"}]``: from
   ``request_execution`` returning to the ``task.execution_started`` event's timestamp (the claim's
   decision, just before its commit). Floor beside it: the projection lag of the same command,
   from the same return to ``runner.wait_for(position)`` (the queue view must show the request
   before any worker can claim it). The same runs also give execute -> ``task.execution_finished``
   (a whole trivial run), beside the same agent started and awaited alone through
   ``AgentProcess``.
   **split** (Postgres only): the same, with an API side (no workers, the relay, NATS) that
   executes and a worker side (two idle workers, its own projection runner, NATS) that starts,
   as ``taskwarden serve`` and ``taskwarden worker`` would: woken when the request arrives on
   NATS (the wake watch), and as the baseline without (its runner's 50 ms poll finds it). Floor:
   the API side's projection lag. ``--nats`` names the server; the stream and subject prefix are
   the run's own, deleted afterwards.
2. **cancel -> exit**: script ``[{"say": "ready"}, {"sleep": 60}]``; once "ready" shows in the
   output view and a random fraction of a heartbeat interval later, ``cancel_task``, and from its
   return to the ``task.execution_finished`` event (outcome cancelled). Floor: the same agent
   started through ``AgentProcess`` and ended with ``terminate()`` (cancel notice on stdin, the
   agent exits 130), timed from the call. Twice: with the cancel watch (the worker is told at
   once) and, as the baseline in the same run, without it (the worker learns at its next
   heartbeat, every ``POLL_RUNNING`` seconds, as remote workers still do).
3. **throughput**: ``--tasks`` tasks with ``[{"say": "done"}]``, created beforehand, executed all
   at once (four threads): runs/s from the first execute to the last finish. Floor: as many bare
   runs of the same agent through ``AgentProcess``, ``--throughput-workers`` at a time, no store.
   ``CPU ms/run`` is this process's CPU (not Postgres's) per run, ``agent CPU ms/run`` the
   agents' (reaped children); ``events/run`` is how far the log moved, divided by the runs.

``--postgres`` is an admin URL: a scratch database ``tw_bench_<random>`` is created and dropped.
``--database-url`` uses that database instead (its tables are created if missing, never dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from application.commands import CancelTask, CreateProject, CreateTask, ExecuteTask, Targeted
from application.executions import cancel_task, request_execution
from application.projects import create_project
from application.results import Queued
from application.tasks import create_task
from bench.common import DEFAULT_POSTGRES, machine, percentile, scratch_database, table
from domain.task import Task
from domain.values import Actor
from infrastructure import event_loop, garbage_collection
from infrastructure.agent.adapters import adapter
from infrastructure.agent.process import AgentProcess
from infrastructure.agent.protocol import Output, Say
from infrastructure.settings import Settings
from interfaces.execution_host import ExecutionHost
from interfaces.execution_run import POLL_RUNNING
from interfaces.services import Services, build, migrate

T = TypeVar("T")

DEFAULT_NATS = "nats://127.0.0.1:4222"
TARGET_START_P95_MS = 5.0  # issue 14, item 7 (issue 4 asked for 100)
TARGET_CANCEL_P95_MS = 100.0  # issue 14, item 7, a local worker (issue 4 asked for 2,000)
TEAM = "bench"
BY = Actor(id="user:bench", team_id=TEAM, request_id="bench-execution")


def execute(services: Services, task_id: str) -> Queued:
    target = Targeted(target=task_id, command=ExecuteTask())
    return request_execution(services.store, target, BY, spending=services.read_model)


SHORT = [{"say": "hi"}]
LONG = [{"say": "ready"}, {"sleep": 60}]
DONE = [{"say": "done"}]
TERMINAL = frozenset({"completed", "failed", "cancelled", "timed_out"})
SETTLE_SECONDS = 0.03  # after a run, before the next command: the workers are idle again
DEADLINE_SECONDS = 120.0


# ---- the engine, in this process --------------------------------------------------------------


@dataclass(frozen=True)
class Nats:
    """A NATS server, and a stream and subject prefix of this run's own."""

    url: str
    stream: str
    prefix: str


class Engine:
    """Services and an ExecutionHost with ``count`` workers (none: no host) on an asyncio loop in
    a thread; the relay when ``relay``; with ``nats``, a NATS bus in place of the in-process one."""

    stops_retried = 0  # over every engine of this run: stops that needed a second cancel

    def __init__(
        self,
        settings: Settings,
        count: int,
        *,
        wake_on_bus: bool = True,
        relay: bool = True,
        nats: Nats | None = None,
    ) -> None:
        self.services: Services = build(settings)
        if nats is not None:
            on_nats(self.services, nats)
        self._relay = relay
        self._changed = threading.Event()
        self.services.runner.on_advance(lambda position: self._changed.set())
        self._loop = event_loop.new_event_loop()  # as a worker process runs
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="bench-workers", daemon=True
        )
        self._thread.start()
        self._host = ExecutionHost(self.services, count, wake_on_bus=wake_on_bus) if count else None
        self.lost_cancels = 0
        self._call(self._start())

    async def _start(self) -> None:
        if self._host is not None:
            self._host.start()
        if self._relay:
            self.services.relay.start()  # as the API process does in embedded mode

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(DEADLINE_SECONDS)

    async def _stop(self) -> None:
        """``ExecutionHost.stop``, cancelling again if a cancel was lost.

        On Python 3.11 ``asyncio.wait_for`` swallows a cancel that arrives while the awaited
        future completes (cpython gh-86296, fixed in 3.12): an idle worker poked at the moment
        the pool stops keeps looping, and ``WorkerPool.stop`` waits for it forever.
        """
        await self.services.relay.stop()
        if self._host is None:
            await self.services.bus.close()
            return
        stopping = asyncio.ensure_future(self._host.stop())
        while not (await asyncio.wait([stopping], timeout=5.0))[0]:
            self.lost_cancels += 1
            for task in asyncio.all_tasks():
                if task not in (stopping, asyncio.current_task()):
                    task.cancel()
        stopping.result()
        await self.services.bus.close()
        if self.lost_cancels:
            Engine.stops_retried += 1

    def close(self) -> None:
        try:
            self._call(self._stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()
            self.services.close()

    def until(self, read: Callable[[], T], accept: Callable[[T], bool], what: str) -> T:
        """Re-reads whenever the views move on (at least every 50 ms) until ``accept`` holds."""
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            self._changed.clear()
            value = read()
            if accept(value):
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"never became {what}: {value!r}")
            self._changed.wait(0.05)

    def task(self, task_id: str) -> Task:
        return self.services.store.get(Task, UUID(task_id))

    def finished(self, task_id: str) -> Task:
        return self.until(lambda: self.task(task_id), lambda t: t.status in TERMINAL, "finished")

    def event(self, task_id: str, kind: type[Any]) -> Any:
        """The last event of type ``kind`` of the task."""
        events = self.services.store.events_of(UUID(task_id), TEAM)
        found = [e for e in events if isinstance(e, kind)]
        if not found:
            raise LookupError(f"task {task_id} has no {kind.__name__}")
        return found[-1]

    def output(self, task_id: str) -> str:
        return "".join(r.text for r in self.services.read_model.output(TEAM, task_id, 0, 1000))

    @property
    def store(self) -> Any:
        return self.services.store


def on_nats(services: Services, nats: Nats) -> None:
    """The services' bus and relay on NATS, with the run's stream and prefix (the settings have
    no prefix: ``taskwarden.>`` would meet any other stream on a shared server)."""
    from application.relay import Relay  # noqa: PLC0415 - only this case needs NATS
    from infrastructure.nats_bus import NatsBus  # noqa: PLC0415

    services.bus = NatsBus(nats.url, nats.stream, prefix=nats.prefix)
    services.relay = Relay(
        services.ledger, services.bus, services.tracking, clock=services.store.clock
    )
    services.store.on_recorded(services.relay.hand)


@contextmanager
def engine(
    settings: Settings,
    count: int,
    *,
    wake_on_bus: bool = True,
    relay: bool = True,
    nats: Nats | None = None,
) -> Iterator[Engine]:
    running = Engine(settings, count, wake_on_bus=wake_on_bus, relay=relay, nats=nats)
    garbage_collection.settle()  # as a served process (taskwarden worker, serve) once started
    try:
        yield running
    finally:
        running.close()


def new_tasks(
    settings: Settings, project_id: str, script: list[dict[str, Any]], n: int
) -> list[str]:
    """Created before the workers start, so that creating them wakes nobody."""
    services = build(settings)
    try:
        return [
            create_task(
                services.store,
                CreateTask(title=f"bench {i}", project_id=project_id, metadata={"script": script}),
                BY,
            ).data["id"]
            for i in range(n)
        ]
    finally:
        services.close()


def new_project(settings: Settings) -> str:
    services = build(settings)
    try:
        return str(create_project(services.store, CreateProject(name="bench"), BY).data["id"])
    finally:
        services.close()


# ---- the floors: the agent alone, through AgentProcess ----------------------------------------


def agent_argv(script: list[dict[str, Any]]) -> list[str]:
    return [sys.executable, "-m", "infrastructure.agent.scripted", json.dumps(script)]


def agent_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TASKWARDEN_")}


async def start_agent(script: list[dict[str, Any]], cwd: Path) -> AgentProcess:
    return await AgentProcess.start(agent_argv(script), cwd, agent_env(), adapter("protocol"))


async def drain(process: AgentProcess, ready: asyncio.Event | None = None) -> None:
    async for message in process.messages():
        if ready is not None and isinstance(message, Output | Say) and message.text == "ready":
            ready.set()


async def bare_run(cwd: Path) -> float:
    """Seconds from asking for the agent to its exit (the rest of its group gone)."""
    started = time.perf_counter()
    process = await start_agent(SHORT, cwd)
    reader = asyncio.ensure_future(drain(process))
    await process.wait()
    await reader
    return time.perf_counter() - started


async def bare_terminate(cwd: Path) -> float:
    """Seconds from ``terminate()`` to the agent gone, once it said "ready"."""
    process = await start_agent(LONG, cwd)
    ready = asyncio.Event()
    reader = asyncio.ensure_future(drain(process, ready))
    await asyncio.wait_for(ready.wait(), DEADLINE_SECONDS)
    started = time.perf_counter()
    await process.terminate(5.0, reason="cancelled")
    seconds = time.perf_counter() - started
    await reader
    return seconds


async def bare_throughput(cwd: Path, runs: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await bare_run(cwd)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(runs)))
    return time.perf_counter() - started


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu() -> float:
    """CPU of the agents this process started and reaped."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---- 1. enqueue -> start ----------------------------------------------------------------------


@dataclass
class Samples:
    figure: str
    values: list[float]  # milliseconds
    floor: str
    floor_values: list[float]
    target_ms: float | None = None

    def row(self, store: str) -> list[Any]:
        p50, p95 = percentile(self.values, 0.5), percentile(self.values, 0.95)
        f50, f95 = percentile(self.floor_values, 0.5), percentile(self.floor_values, 0.95)
        target = "-"
        if self.target_ms is not None:
            met = "met" if p95 < self.target_ms else "NOT met"
            target = f"p95 < {self.target_ms:,.0f}: {met}"
        return [
            store,
            self.figure,
            len(self.values),
            p50,
            p95,
            percentile(self.values, 0.99),
            self.floor,
            f50,
            f95,
            p50 / f50,
            p95 / f95,
            target,
        ]


def enqueue_to_start(
    settings: Settings, project_id: str, workers: int, args: argparse.Namespace
) -> tuple[Samples, list[float]]:
    """Returns the start samples (floor: projection lag) and execute -> finished, in ms."""
    total = args.warmup + args.runs
    task_ids = new_tasks(settings, project_id, SHORT, total)
    starts: list[float] = []
    lags: list[float] = []
    whole: list[float] = []
    with engine(settings, workers) as running:
        for i, task_id in enumerate(task_ids):
            time.sleep(SETTLE_SECONDS)
            written = execute(running.services, task_id)
            returned = time.time()
            running.services.runner.wait_for(written.position, 5.0)
            applied = time.time()
            task = running.finished(task_id)
            if task.status != "completed":
                raise RuntimeError(f"run {i} ended {task.status}: {task.result}")
            started = running.event(task_id, Task.ExecutionStarted).timestamp.timestamp()
            ended = running.event(task_id, Task.ExecutionFinished).timestamp.timestamp()
            if i >= args.warmup:
                starts.append((started - returned) * 1000)
                lags.append((applied - returned) * 1000)
                whole.append((ended - returned) * 1000)
    figure = f"execute -> started, {workers} idle workers"
    return Samples(figure, starts, "projection lag", lags, TARGET_START_P95_MS), whole


def split_start(
    settings: Settings, project_id: str, args: argparse.Namespace, *, wake: bool
) -> Samples:
    """Enqueue -> start across two processes' worth of services on one Postgres and NATS: an API
    side (no workers, the relay) executes, a worker side (2 idle workers, its own projection
    runner) starts. ``wake``: the worker side's wake watch pokes its runner when the request
    arrives on NATS; else its runner finds it at its next poll (every 50 ms)."""
    task_ids = new_tasks(settings, project_id, SHORT, args.warmup + args.runs)
    tag = uuid.uuid4().hex[:8]
    nats = Nats(args.nats, f"TWBENCH_EXEC_{tag}", f"twbenchexec{tag}")
    starts: list[float] = []
    lags: list[float] = []
    try:
        with (
            engine(settings, 0, nats=nats) as api,
            engine(settings, 2, wake_on_bus=wake, relay=False, nats=nats) as workers,
        ):
            for i, task_id in enumerate(task_ids):
                time.sleep(SETTLE_SECONDS)
                written = execute(api.services, task_id)
                returned = time.time()
                api.services.runner.wait_for(written.position, 5.0)
                applied = time.time()
                task = workers.finished(task_id)
                if task.status != "completed":
                    raise RuntimeError(f"run {i} ended {task.status}: {task.result}")
                started = workers.event(task_id, Task.ExecutionStarted).timestamp.timestamp()
                if i >= args.warmup:
                    starts.append((started - returned) * 1000)
                    lags.append((applied - returned) * 1000)
    finally:
        delete_stream(args.nats, nats.stream)
    how = "woken on NATS" if wake else "at the runner's poll (before)"
    figure = f"execute -> started, worker process, {how}"
    return Samples(figure, starts, "API side's projection lag", lags, TARGET_START_P95_MS)


def delete_stream(url: str, stream: str) -> None:
    import nats as nats_client  # noqa: PLC0415 - only this case needs NATS

    async def delete() -> None:
        client = await nats_client.connect(url, allow_reconnect=False)
        try:
            with contextlib.suppress(nats_client.errors.Error):
                await client.jetstream().delete_stream(stream)
        finally:
            await client.close()

    asyncio.run(delete())


# ---- 2. cancel -> exit ------------------------------------------------------------------------


def cancel_to_exit(
    settings: Settings, project_id: str, args: argparse.Namespace, *, at_once: bool
) -> list[float]:
    """``at_once``: with the cancel watch; else the worker learns at its next heartbeat."""
    total = min(args.warmup, 2) + args.cancels
    task_ids = new_tasks(settings, project_id, LONG, total)
    samples: list[float] = []
    phases = random.Random(4)  # a reproducible spread, not security
    with engine(settings, 2, wake_on_bus=at_once) as running:
        for i, task_id in enumerate(task_ids):
            execute(running.services, task_id)
            running.until(lambda t=task_id: running.output(t), lambda s: "ready" in s, "ready")
            # "ready" shows a fixed time after the start (the output batcher's 200 ms), and so
            # would the cancel: spread it over a heartbeat interval instead
            time.sleep(phases.uniform(0, POLL_RUNNING))
            cancel = Targeted(target=task_id, command=CancelTask(reason="bench"))
            cancel_task(running.store, cancel, BY)
            returned = time.time()
            task = running.finished(task_id)
            if task.status != "cancelled":
                raise RuntimeError(f"cancel {i} ended {task.status}: {task.result}")
            ended = running.event(task_id, Task.ExecutionFinished).timestamp.timestamp()
            if i >= total - args.cancels:
                samples.append((ended - returned) * 1000)
    return samples


# ---- 3. throughput ----------------------------------------------------------------------------


@dataclass
class Throughput:
    runs: int
    rate: float
    cpu_ms: float
    agent_ms: float
    bare_rate: float
    bare_cpu_ms: float
    bare_agent_ms: float
    failures: int
    events: float

    def row(self, store: str, workers: int) -> list[Any]:
        return [
            store,
            workers,
            self.runs,
            self.rate,
            self.cpu_ms,
            self.agent_ms,
            self.bare_rate,
            self.bare_cpu_ms,
            self.bare_agent_ms,
            self.rate / self.bare_rate,
            self.events,
            self.failures,
        ]


def throughput(settings: Settings, project_id: str, args: argparse.Namespace) -> Throughput:
    task_ids = new_tasks(settings, project_id, DONE, args.tasks)
    with engine(settings, args.throughput_workers) as running:
        time.sleep(0.2)  # the workers have made their first (empty) claims
        cpu, agents = self_cpu(), children_cpu()
        position = running.services.store.max_position()
        first = time.time()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda t: execute(running.services, t), task_ids))
        running.until(running.services.read_model.in_flight, lambda rows: not rows, "drained")
        cpu, agents = self_cpu() - cpu, children_cpu() - agents
        events = running.services.store.max_position() - position
        tasks = [running.finished(t) for t in task_ids]
        ends = [running.event(t, Task.ExecutionFinished).timestamp.timestamp() for t in task_ids]
    failures = sum(t.status != "completed" for t in tasks)
    seconds = max(ends) - first
    with tempfile.TemporaryDirectory(prefix="tw_bench_agents_") as cwd:
        bare_cpu, bare_agents = self_cpu(), children_cpu()
        bare = asyncio.run(bare_throughput(Path(cwd), args.tasks, args.throughput_workers))
        bare_cpu, bare_agents = self_cpu() - bare_cpu, children_cpu() - bare_agents
    return Throughput(
        runs=args.tasks,
        rate=args.tasks / seconds,
        cpu_ms=cpu * 1000 / args.tasks,
        agent_ms=agents * 1000 / args.tasks,
        bare_rate=args.tasks / bare,
        bare_cpu_ms=bare_cpu * 1000 / args.tasks,
        bare_agent_ms=bare_agents * 1000 / args.tasks,
        failures=failures,
        events=events / args.tasks,
    )


# ---- one store --------------------------------------------------------------------------------


def floors(runs: int, cancels: int) -> tuple[list[float], list[float]]:
    """The agent alone: start -> exit (``runs`` times) and terminate -> gone (``cancels``), ms."""

    async def measure(cwd: Path) -> tuple[list[float], list[float]]:
        await bare_run(cwd)  # warm-up
        whole = [await bare_run(cwd) * 1000 for _ in range(runs)]
        ends = [await bare_terminate(cwd) * 1000 for _ in range(cancels)]
        return whole, ends

    with tempfile.TemporaryDirectory(prefix="tw_bench_agents_") as cwd:
        return asyncio.run(measure(Path(cwd)))


def run_store(store: str, settings: Settings, args: argparse.Namespace) -> tuple[list, list]:
    started = time.perf_counter()
    migrate(settings)
    project_id = new_project(settings)
    bare_whole, bare_cancel = floors(min(args.runs, 30), args.cancels)
    rows: list[list[Any]] = []
    whole_rows: list[list[Any]] = []
    for workers in args.workers if "start" in args.cases else []:
        samples, whole = enqueue_to_start(settings, project_id, workers, args)
        rows.append(samples.row(store))
        figure = f"execute -> finished, {workers} workers"
        whole_rows.append(Samples(figure, whole, "agent alone", bare_whole).row(store))
        print(f"  {store}: {workers} workers done ({time.perf_counter() - started:.0f} s)")
    rows += whole_rows
    if "split" in args.cases and store == "postgres":
        for wake in (False, True):
            rows.append(split_start(settings, project_id, args, wake=wake).row(store))
        print(f"  {store}: worker process starts done ({time.perf_counter() - started:.0f} s)")
    if "cancel" in args.cases:
        terminate = "AgentProcess.terminate"
        for at_once, figure, target in (
            (False, "cancel -> finished, at the heartbeat (before)", None),
            (True, "cancel -> finished, told at once", TARGET_CANCEL_P95_MS),
        ):
            cancels = cancel_to_exit(settings, project_id, args, at_once=at_once)
            rows.append(Samples(figure, cancels, terminate, bare_cancel, target).row(store))
        print(f"  {store}: cancels done ({time.perf_counter() - started:.0f} s)")
    if "throughput" not in args.cases:
        return rows, []
    flow = throughput(settings, project_id, args)
    print(f"  {store}: throughput done ({time.perf_counter() - started:.0f} s)", flush=True)
    return rows, [flow.row(store, args.throughput_workers)]


def settings_for(data_dir: Path, database_url: str | None) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        workspace_root=data_dir / "workspaces",
        rate_limit_enabled=False,
    )


LATENCY_HEADERS = [
    "store",
    "figure",
    "n",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "floor",
    "floor p50 ms",
    "floor p95 ms",
    "ratio p50",
    "ratio p95",
    "target",
]
THROUGHPUT_HEADERS = [
    "store",
    "workers",
    "runs",
    "runs/s",
    "CPU ms/run",
    "agent CPU ms/run",
    "bare runs/s",
    "bare CPU ms/run",
    "bare agent CPU ms/run",
    "engine/bare",
    "events/run",
    "failures",
]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin URL for a scratch database")
    p.add_argument("--database-url", help="use this Postgres database instead of a scratch one")
    p.add_argument("--runs", type=int, default=100, help="measured starts per worker count")
    p.add_argument("--workers", default="2,4", help="comma list of idle worker counts")
    p.add_argument("--cancels", type=int, default=20, help="measured cancels")
    p.add_argument("--tasks", type=int, default=200, help="runs in the throughput case")
    p.add_argument("--throughput-workers", type=int, default=4)
    p.add_argument("--warmup", type=int, default=5, help="unmeasured runs before each case")
    p.add_argument("--cases", default="start,split,cancel,throughput", help="comma list of cases")
    p.add_argument("--nats", default=DEFAULT_NATS, help="NATS server of the split case")
    args = p.parse_args(argv)
    args.workers = [int(w) for w in args.workers.split(",") if w]
    args.cases = {c for c in args.cases.split(",") if c}
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    print(f"execution benchmark on {machine()}, load average {os.getloadavg()[0]:.2f}")
    started = time.perf_counter()
    latency: list[list[Any]] = []
    flows: list[list[Any]] = []
    if args.store in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="tw_bench_") as tmp:
            rows, flow = run_store("sqlite", settings_for(Path(tmp), None), args)
            latency += rows
            flows += flow
    if args.store in ("postgres", "both"):
        with tempfile.TemporaryDirectory(prefix="tw_bench_") as tmp:
            if args.database_url:
                rows, flow = run_store("postgres", settings_for(Path(tmp), args.database_url), args)
            else:
                with scratch_database(args.postgres) as url:
                    rows, flow = run_store("postgres", settings_for(Path(tmp), url), args)
            latency += rows
            flows += flow
    print()
    print(table(LATENCY_HEADERS, latency))
    if flows:
        print()
        print(table(THROUGHPUT_HEADERS, flows))
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    if Engine.stops_retried:
        print(
            f"{Engine.stops_retried} engine stop(s) lost a cancel and needed a second one "
            "(asyncio.wait_for on Python 3.11, cpython gh-86296; see Engine._stop)"
        )
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
