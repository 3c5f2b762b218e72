"""Part 2 of the fan-out benchmark: webhook deliveries per second, the app against plain signed
POSTs to the same receiver."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import httpx
import msgspec

from bench.common import (
    scratch_database,
    table,
)
from bench.create_tasks import cpu_seconds
from bench.fanout_servers import (
    APP_ENV,
    load_average,
    mint,
    new_project,
    uvicorn_process,
    wait_quiet,
)
from bench.fanout_ws import _or_dash
from bench.hook_receiver import Stats, receiver_process, reset, stats, wait_received
from bench.profiling import start_profile, stop_profile
from bench.ws_client import Http, _answer

TARGET_DELIVERIES_PER_S = 500.0


@dataclass
class Delivered:
    """What a receiver got: deliveries per second from the first to the last, and checks."""

    endpoints: int
    expected: int
    received: int
    rate: float
    out_of_order: int
    missing: int
    duplicates: int
    cpu_ms: float | None = None  # the server's CPU per delivery, in the measured phase
    load: float = 0.0  # the 1-minute load average at the end
    profile: str = ""
    written: float = float("nan")  # events written per second by the task writers (live)


def judge(got: Stats, expected: dict[int, list[int]]) -> Delivered:
    """``expected``: each hook's positions in log order."""
    per_hook: dict[int, list[int]] = defaultdict(list)
    for _, hook, position in got.records:
        per_hook[hook].append(position if position is not None else -1)
    out_of_order = missing = duplicates = 0
    for hook, positions in expected.items():
        seen = per_hook.get(hook, [])
        out_of_order += sum(1 for a, b in zip(seen, seen[1:]) if b <= a)
        duplicates += len(seen) - len(set(seen))
        missing += len(set(positions) - set(seen))
    times = [t for t, _, _ in got.records]
    span = max(times) - min(times) if len(times) > 1 else float("nan")
    total = sum(len(p) for p in expected.values())
    return Delivered(
        endpoints=len(expected),
        expected=total,
        received=len(got.records),
        rate=(len(times) - 1) / span if span and span == span else float("nan"),
        out_of_order=out_of_order,
        missing=missing,
        duplicates=duplicates,
    )


async def write_tasks(url: str, token: str, project_id: str, count: int, writers: int) -> list[int]:
    """Creates ``count`` tasks with ``writers`` keep-alive connections; returns the positions."""
    positions: list[int] = []
    left = iter(range(count))
    headers = {"authorization": f"Bearer {token}"}

    async def writer() -> None:
        http = await Http.open(url)
        try:
            for i in left:
                body = msgspec.json.encode({"title": f"hook {i}", "project_id": project_id})
                status, answer = await http.request("POST", "/api/tasks/", body, headers)
                if status != 201:
                    raise RuntimeError(f"create answered {status}: {answer[:300]!r}")
                positions.append(int(_answer(answer).meta["position"]))
        finally:
            await http.close()

    await asyncio.gather(*(writer() for _ in range(writers)))
    return sorted(positions)


class Api:
    def __init__(self, url: str, token: str) -> None:
        self.client = httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=60
        )

    def call(self, method: str, path: str, **kw: Any) -> Any:
        response = self.client.request(method, path, **kw)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json()["data"]

    def webhooks(self, receiver: str, count: int) -> list[str]:
        ids = []
        for hook in range(count):
            body = {"url": f"{receiver}/hook/{hook}", "events": ["*"]}
            ids.append(self.call("POST", "/api/webhooks", json=body)["id"])
        return ids

    def queued(self, webhook_id: str) -> int:
        path = f"/api/webhooks/{webhook_id}/deliveries"
        return int(self.call("GET", path, params={"page_size": 1})["total"])


def app_deliveries(
    url: str, pid: int, receiver: str, endpoints: int, mode: str, args: argparse.Namespace
) -> tuple[Delivered, str]:
    """One app run: ``endpoints`` new webhooks, ``args.deliveries // endpoints`` events."""
    events = args.deliveries // endpoints
    admin = mint(url, "admin")
    api = Api(url, admin)
    project_id = new_project(url, admin)
    hold = mode == "backlog"
    reset(receiver, hold=hold)
    ids = api.webhooks(receiver, endpoints)
    profiler = None
    before = cpu_seconds(pid)
    if not hold and args.profile:
        profiler = start_profile(pid, args)
    writing = time.perf_counter()
    positions = asyncio.run(write_tasks(url, admin, project_id, events, args.writers))
    written = events / (time.perf_counter() - writing)
    if hold:
        deadline = time.monotonic() + args.timeout
        while any(api.queued(w) < events for w in ids) or len(stats(receiver).held) < endpoints:
            if time.monotonic() > deadline:
                raise TimeoutError("the deliveries were not all queued in time")
            time.sleep(0.25)
        held = stats(receiver).held
        before = cpu_seconds(pid)
        if args.profile:
            profiler = start_profile(pid, args)
        for hook, webhook_id in enumerate(ids):
            api.call("POST", f"/api/webhooks/{webhook_id}/deliveries/{held[hook]}/redeliver")
    got = wait_received(receiver, events * endpoints, args.timeout)
    after = cpu_seconds(pid)
    result = judge(got, {hook: positions for hook in range(endpoints)})
    result.load = load_average()
    result.written = written
    if before is not None and after is not None and result.received:
        result.cpu_ms = (after - before) * 1000 / result.received
    if profiler is not None:
        result.profile = stop_profile(profiler)
    for webhook_id in ids:  # nothing more for them in the next runs
        api.call("DELETE", f"/api/webhooks/{webhook_id}")
    return result, got.sample


async def plain_posts(
    receiver: str, endpoints: int, per_endpoint: int, body: bytes, sender: bool
) -> None:
    """Signed POSTs, sequential per endpoint, concurrent across endpoints: over one shared
    ``httpx.AsyncClient`` (kept-alive connections), or (``sender``) through the app's own
    ``HttpSender`` (the SSRF check, pinning, ``infrastructure/http1``), with no store at all."""
    from application.webhooks.signing import new_secret, signed_headers  # noqa: PLC0415
    from domain.webhook_url import parse_networks  # noqa: PLC0415
    from infrastructure.webhook_sender import HttpSender  # noqa: PLC0415

    secret = new_secret()
    shared = httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=15)
    ours = HttpSender(parse_networks(["127.0.0.0/8"]))

    async def lane(hook: int) -> None:
        for _ in range(per_endpoint):
            key = str(uuid4())
            headers = signed_headers([secret], key, "task.created", int(time.time()), body)
            url = f"{receiver}/hook/{hook}"
            if sender:
                answer = await ours.send(url, headers, body)
                if answer.error is not None:
                    raise RuntimeError(f"HttpSender: {answer.error}")
            else:
                response = await shared.post(url, content=body, headers=headers)
                response.raise_for_status()

    async with shared:
        await asyncio.gather(*(lane(hook) for hook in range(endpoints)))
    await ours.aclose()


def baseline_deliveries(
    receiver: str, endpoints: int, args: argparse.Namespace, sample: str, sender: bool
) -> Delivered:
    events = args.deliveries // endpoints
    body = _sample_body(sample)
    reset(receiver)
    asyncio.run(plain_posts(receiver, endpoints, events, body, sender))
    got = wait_received(receiver, events * endpoints, args.timeout)
    # the baseline's bodies all carry the same position: order is not checked, counts are
    result = judge(got, {hook: [] for hook in range(endpoints)})
    result.expected = events * endpoints
    result.missing = events * endpoints - result.received
    result.out_of_order = result.duplicates = 0
    result.load = load_average()
    return result


def _sample_body(sample: str) -> bytes:
    """A body of the app's size (its first delivery's, as received), else a made-up one."""
    if sample:
        return sample.encode()
    return msgspec.json.encode({"type": "task.created", "position": 1, "data": {"x": "y" * 700}})


def run_webhooks(args: argparse.Namespace) -> list[list[Any]]:
    rows = []
    env_base = APP_ENV | {"TASKWARDEN_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}
    with receiver_process() as receiver:
        for store in args.webhook_stores:
            wait_quiet(args.wait_quiet)
            with contextlib.ExitStack() as stack:
                tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="tw_bench_"))
                env = env_base | {"TASKWARDEN_DATA_DIR": tmp}
                if store == "postgres":
                    env["TASKWARDEN_DATABASE_URL"] = stack.enter_context(
                        scratch_database(args.postgres)
                    )
                server = uvicorn_process("bench.fanout_servers:real_app", env)
                url, pid = stack.enter_context(server)
                measured: dict[tuple[int, str], Delivered] = {}
                sample = ""
                for endpoints in args.endpoints:
                    for mode in args.modes:
                        result, sample = app_deliveries(url, pid, receiver, endpoints, mode, args)
                        measured[(endpoints, mode)] = result
                        if result.profile:
                            print(f"\nserver profile ({store}, {endpoints} webhooks, {mode}):")
                            print(result.profile, "\n", flush=True)
            for endpoints in args.endpoints:
                shared = baseline_deliveries(receiver, endpoints, args, sample, sender=False)
                alone = baseline_deliveries(receiver, endpoints, args, sample, sender=True)
                for mode in args.modes:
                    rows.append(hook_row(store, mode, measured[(endpoints, mode)], shared, alone))
                    print(table(HOOK_HEADERS, [rows[-1]]), flush=True)
    return rows


HOOK_HEADERS = [
    "store",
    "webhooks",
    "mode",
    "deliveries",
    "app deliveries/s",
    "events written/s",
    "app CPU ms/delivery",
    "httpx POSTs/s (kept alive)",
    "HttpSender alone POSTs/s",
    "app/httpx",
    "app/HttpSender alone",
    "missing",
    "out of order",
    "duplicates",
    "load 1m",
]


def hook_row(
    store: str, mode: str, app: Delivered, shared: Delivered, alone: Delivered
) -> list[Any]:
    return [
        store,
        app.endpoints,
        mode,
        app.received,
        app.rate,
        app.written,
        _or_dash(app.cpu_ms),
        shared.rate,
        alone.rate,
        app.rate / shared.rate,
        app.rate / alone.rate,
        app.missing + shared.missing + alone.missing,
        app.out_of_order,
        app.duplicates,
        max(app.load, shared.load, alone.load),
    ]


def hook_verdict(rows: list[list[Any]]) -> list[str]:
    lines = []
    for row in rows:
        met = "met" if row[4] >= TARGET_DELIVERIES_PER_S and not any(row[11:14]) else "NOT met"
        lines.append(
            f"target: >= {TARGET_DELIVERIES_PER_S:.0f} webhook deliveries/s ({row[0]}, "
            f"{row[1]} webhook(s), {row[2]}): {row[4]:.0f}/s, {met}"
        )
    return lines
