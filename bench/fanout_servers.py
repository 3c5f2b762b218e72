"""The servers of the fan-out benchmark: the real app and a bare Starlette broadcast under
uvicorn in child processes, a quiet-machine wait, and the calls that set a run up."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from contextlib import AbstractContextManager
from pathlib import Path
from uuid import uuid4

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from bench.common import server_in_process
from bench.create_tasks import BENCH_ADMIN_KEY
from interfaces.http.server import WEBSOCKET_IMPLEMENTATION

# ---- servers ----------------------------------------------------------------------------------


def real_app() -> Starlette:
    """The app as deployed, configured from TASKWARDEN_* variables, tables migrated at start.

    With ``BENCH_NATS_PREFIX`` set, the NATS bus uses that subject prefix (and the stream of
    ``TASKWARDEN_NATS_STREAM``), so that the benchmark keeps apart from anything else on a shared
    server; the settings have no prefix of their own (``taskwarden.>`` is fixed)."""
    from application.relay import Relay  # noqa: PLC0415 - only the server needs these
    from infrastructure.nats_bus import NatsBus  # noqa: PLC0415
    from infrastructure.settings import Settings  # noqa: PLC0415
    from interfaces.bootstrap.api import ApiRole  # noqa: PLC0415
    from interfaces.http.app import create_app  # noqa: PLC0415
    from interfaces.services import build, migrate  # noqa: PLC0415

    settings = Settings.from_env()
    prefix = os.environ.get("BENCH_NATS_PREFIX")
    if not prefix or not settings.nats_url:
        return create_app(settings, migrate_first=True, settle=True)  # as served
    migrate(settings)
    services = build(settings)
    services.bus = NatsBus(
        settings.nats_url,
        settings.nats_stream,
        prefix=prefix,
        max_age=settings.nats_max_age,
        max_bytes=settings.nats_max_bytes,
    )
    clock = services.store.clock
    services.relay = Relay(services.ledger, services.bus, services.tracking, clock=clock)
    services.store.on_recorded(services.relay.hand)
    return create_app(settings, api=ApiRole.from_settings(settings, services=services), settle=True)


def bare_ws_app() -> Starlette:
    """The baseline: sockets that greet and answer a subscribe, and ``POST /broadcast`` that
    answers a position, then sends one message of ``BENCH_MESSAGE_BYTES`` to every socket."""
    sockets: set[WebSocket] = set()
    size = int(os.environ.get("BENCH_MESSAGE_BYTES", "600"))
    counter = [0]
    pending: set[asyncio.Task[None]] = set()

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text('{"type":"connected","data":{}}')
        sockets.add(websocket)
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                await websocket.send_text('{"type":"subscribed","id":"s","data":{}}')
        finally:
            sockets.discard(websocket)

    async def send_all(text: str) -> None:
        for websocket in list(sockets):
            with contextlib.suppress(Exception):
                await websocket.send_text(text)

    async def broadcast(request: Request) -> Response:
        counter[0] += 1
        position = counter[0]
        head = f'{{"type":"task_update","position":{position},"data":{{"pad":"'
        text = head + "x" * max(0, size - len(head) - 4) + '"}}'
        task = asyncio.create_task(send_all(text))
        pending.add(task)
        task.add_done_callback(pending.discard)
        body = f'{{"data":{{}},"error":null,"meta":{{"position":{position}}}}}'
        return Response(body, 201, media_type="application/json")

    async def health(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/broadcast", broadcast, methods=["POST"]),
            Route("/health", health),
            WebSocketRoute("/ws/{session_id}", endpoint),
        ]
    )


def uvicorn_process(factory: str, env: dict[str, str]) -> AbstractContextManager[tuple[str, int]]:
    """``module:factory`` under uvicorn in a child process with ``taskwarden serve``'s options;
    yields the base URL and its pid."""
    options = ["--ws", WEBSOCKET_IMPLEMENTATION, "--no-proxy-headers"]
    return server_in_process(factory, env, options, timeout=60)


def busy_fraction(seconds: float = 1.0) -> float:
    """The share of the machine's CPU time spent busy over ``seconds`` (/proc/stat)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle and iowait
        return sum(fields), idle

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def wait_quiet(limit: float, threshold: float = 0.15, quiet_for: int = 15) -> None:
    """Waits (at most ``limit`` seconds) until the machine has been under ``threshold`` busy for
    ``quiet_for`` seconds in a row, as docs/performance.md's runs were started."""
    if limit <= 0:
        return
    deadline, streak = time.monotonic() + limit, 0
    while streak < quiet_for and time.monotonic() < deadline:
        streak = streak + 1 if busy_fraction() < threshold else 0
    state = "quiet" if streak >= quiet_for else f"still busy after {limit:g} s, going on"
    print(f"machine {state} (load average {os.getloadavg()[0]:.2f})", flush=True)


def load_average() -> float:
    return os.getloadavg()[0]


def mint(url: str, role: str) -> str:
    minted = httpx.post(
        f"{url}/api/auth/token",
        json={"team_id": "bench", "role": role},
        headers={"X-Admin-Key": BENCH_ADMIN_KEY},
        timeout=30,
    )
    minted.raise_for_status()
    return str(minted.json()["data"]["access_token"])


def new_project(url: str, token: str) -> str:
    response = httpx.post(
        f"{url}/api/projects/",
        json={"name": f"fanout {uuid4().hex[:6]}"},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["data"]["id"])


APP_ENV = {
    "TASKWARDEN_ADMIN_KEY": BENCH_ADMIN_KEY,
    "TASKWARDEN_RATE_LIMIT_ENABLED": "0",
    "TASKWARDEN_WORKERS": "0",  # nothing runs the created tasks
    "TASKWARDEN_RUN_PROJECTIONS": "1",
    "TASKWARDEN_WS_MAX_SOCKETS_PER_PRINCIPAL": "0",  # a thousand sockets of one token
}
