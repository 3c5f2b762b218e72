"""Sampling a benchmark's server with py-spy and summarizing where its time goes."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.common import (
    ROOT,
)

# ---- profiling --------------------------------------------------------------------------------


def start_profile(pid: int, args: argparse.Namespace) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("--profile: py-spy not found", file=sys.stderr)
        return None
    out = tempfile.NamedTemporaryFile(prefix="tw_spy_", suffix=".txt", delete=False)
    out.close()
    argv = [spy, "record", "-p", str(pid), "-r", "200", "-f", "raw", "--nonblocking"]
    if not os.environ.get("BENCH_PROFILE_ALL"):  # every thread, waiting ones too, when set
        argv.append("--gil")
    argv += ["-o", out.name]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    process.output = out.name  # type: ignore[attr-defined]
    time.sleep(0.5)
    return process


def stop_profile(process: subprocess.Popen[bytes]) -> str:
    top = int(os.environ.get("BENCH_PROFILE_TOP", "25"))  # lines per list
    process.send_signal(2)  # SIGINT: py-spy writes what it has
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        return "(py-spy did not stop)"
    path = Path(process.output)  # type: ignore[attr-defined]
    text = path.read_text() if path.exists() else ""
    if os.environ.get("BENCH_PROFILE_KEEP"):  # the raw stacks too, for a closer look
        return f"(raw stacks kept in {path})\n{summarize_stacks(text, top)}"
    path.unlink(missing_ok=True)
    return summarize_stacks(text, top)


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::\d+)?\)$")


def summarize_stacks(collapsed: str, top: int = 25) -> str:
    """py-spy's collapsed stacks as two lists: the functions and the files where samples were
    taken (self), and the functions samples passed through (inclusive), as shares of all."""
    own: Counter[str] = Counter()
    through: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for name in set(frames):
            through[name] += n
        areas[_area(stack)] += n
    if not total:
        return "(no samples)"

    def block(title: str, counts: Counter[str]) -> str:
        lines = [f"{title} ({total} samples)"]
        lines += [f"  {100 * n / total:5.1f} %  {name}" for name, n in counts.most_common(top)]
        return "\n".join(lines)

    return "\n".join([block("by area", areas), block("self", own), block("inclusive", through)])


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    file = match["file"]
    for marker in ("site-packages/", "python3.11/", str(ROOT) + "/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{match['func']} ({file})"


_AREAS = [
    ("webhook_sender.py", "webhooks: HttpSender (a new httpx client per request)"),
    ("httpx/", "webhooks: httpx"),
    ("httpcore/", "webhooks: httpx"),
    ("webhook_attempts.py", "webhooks: attempts (load, sign, record)"),
    ("webhook_signing.py", "webhooks: attempts (load, sign, record)"),
    ("webhook_dispatch.py", "webhooks: dispatcher (queue, peek)"),
    ("uvicorn/protocols/websockets", "websocket send: uvicorn, websockets, transport"),
    ("interfaces/http/ws_protocol.py", "websocket send: uvicorn, websockets, transport"),
    ("websockets/", "websocket send: uvicorn, websockets, transport"),
    ("starlette/websockets.py", "websocket send: Starlette, middleware"),
    ("interfaces/ws/messages.py", "websocket: message building"),
    ("interfaces/ws/shared.py", "websocket: message building"),
    ("interfaces/ws/frames.py", "websocket: message building"),
    ("interfaces/ws/session.py", "websocket: session (outbox, writer task)"),
    ("interfaces/ws/outbox.py", "websocket: session (outbox, writer task)"),
    ("interfaces/ws/eager.py", "websocket: session (outbox, writer task)"),
    ("interfaces/ws/filter.py", "websocket: filter"),
    ("interfaces/ws/feed.py", "websocket: hub and feeds"),
    ("interfaces/ws/hub.py", "websocket: hub and feeds"),
    ("memory_bus.py", "bus: in-process"),
    ("nats_bus.py", "bus: NATS"),
    ("nats/", "bus: NATS"),
    ("relay.py", "relay"),
    ("relay_tracking.py", "relay"),
    ("projections/", "projection runner"),
    ("uvicorn/protocols/http", "HTTP requests (the writes, API calls)"),
    ("interfaces/http/", "HTTP requests (the writes, API calls)"),
    ("application/", "HTTP requests (the writes, API calls)"),
    ("eventsourcing/", "event store"),
    ("psycopg", "event store"),
]
_GENERIC = [
    ("concurrent/futures", "thread pool hand-offs"),
    ("threading.py", "thread pool hand-offs"),
    ("asyncio/", "event loop: scheduling, select, callbacks"),
]


def _area(stack: str) -> str:
    """The innermost of the known areas a sample's stack passes through (the event loop's and the
    thread pool's own frames only when nothing more specific is on the stack)."""
    frames = stack.split(";")
    for areas in (_AREAS, _GENERIC):
        for frame in reversed(frames):
            for marker, area in areas:
                if marker in frame:
                    return area
    return "other"
