"""Event fan-out (issue 5): append -> WebSocket latency, and webhook deliveries per second, each
beside a baseline measured in the same run.

    .venv/bin/python bench/fanout.py [--part websocket|webhooks|both]
        [--store sqlite|nats|both] [--sockets 100,1000] [--events 200] [--warmup 10]
        [--webhook-store sqlite|postgres|both] [--endpoints 1,10] [--deliveries 1000]
        [--modes backlog,live] [--postgres ADMIN_URL] [--nats URL] [--wait-quiet SECONDS]
        [--rounds K] [--profile] [--dump FILE]

**WebSocket** (``--part websocket``). The real app under uvicorn in a child process (as
``bench/create_tasks.py`` runs it): ``sqlite`` is the embedded mode (SQLite, the in-process bus
and relay), ``nats`` is Postgres (a scratch database) with NATS JetStream and the relay in the API
process (``TASKWARDEN_RUN_RELAY=1``, a stream and subject prefix of its own). This process opens N
sockets (a minimal RFC 6455 client on ``asyncio.Protocol`` under uvloop, as the servers run,
about as cheap as a client in Python gets: 7.6-9.7 ms of CPU per event at 1,000 sockets),
authenticates each with an operator token in the handshake's ``Authorization`` header and
subscribes all to one project's ``project_updates``. Then it creates ``--events`` tasks in that
project over HTTP (one keep-alive connection), one at a time, waiting until every socket has
received each before the next. For every (event, socket) pair: the time from the create's answer
(which names the event's ``position``) to the message with that position on the socket. Baseline:
the same sockets on a bare Starlette WebSocket endpoint under the same uvicorn settings, whose
``POST /broadcast`` answers a position and then sends a message of the same size to every socket
(one loop, no queue per socket): the floor of uvicorn and of this client for that fan-out.
``--rounds K`` runs the app and then the bare endpoint K times (fresh servers each round): the
verdict on the app's p99 within 1.2x of the bare one's (issue 14, item 7) is the median of the
rounds' ratios, since one round's ratio moves by more than that here (1.09 to 2.22 for one code,
docs/performance.md, eighth session).

Both servers run with ``interfaces.http.server``'s options (uvicorn's ``websockets-sansio`` with
the frame writer of ``interfaces/http/ws_protocol.py``, which only the app uses: a live event's
frame built once and written to every socket, where the bare endpoint's ``send_text`` frames the
text once per socket through ASGI).

**Webhooks** (``--part webhooks``). The real app in embedded mode under uvicorn (a child process)
with ``TASKWARDEN_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8``, and a receiver in another child process
(a minimal asyncio HTTP/1.1 server answering 200, recording each body's webhook and position).
1 and 10 webhooks (``http://127.0.0.1:<port>/hook/<i>``, every event) are created, then events:
``--deliveries`` deliveries in all (1,000: 1,000 task creations for 1 webhook, 100 for 10).
``--webhook-store postgres`` runs the same app on Postgres (still the in-process bus). Two
figures:

- **backlog**: the receiver answers each webhook's first request 503 with ``Retry-After: 3600``,
  so its lane holds while the events are written and queued; once every delivery is queued (the
  API's delivery lists), a redelivery of each head releases the lanes: deliveries/s from the
  first received to the last. This is the sender alone.
- **live**: the receiver answers 200 at once while the same number of events is written (16
  writers): deliveries/s from the first received to the last, queueing and sending together,
  sharing the server with the writes.

Every delivery must arrive, each webhook's in the order of the log (verified). Baselines, in the
same run, to the same receiver: the same number of signed POSTs (the same headers and body
sizes) from this process, sequential per endpoint as the dispatcher sends them, concurrent across
endpoints, (a) over one shared ``httpx.AsyncClient`` (kept-alive connections) and (b) through the
app's own ``HttpSender`` (SSRF check, pinning, ``infrastructure/http1``) with no store: what the
queue and the store cost on top of sending.

The parts live in ``bench/fanout_ws.py`` and ``bench/fanout_webhooks.py``; the servers in
``bench/fanout_servers.py``, the clients in ``bench/ws_client.py``, the receiver in
``bench/hook_receiver.py``, the sampling in ``bench/profiling.py``.

``--profile`` samples the server with py-spy (``--gil``: only the thread holding the GIL, i.e.
where the interpreter's time goes) during the measured phase of each app run, and prints the
shares by area, by function (self) and through function (inclusive). Needs py-spy and ptrace.
``BENCH_PROFILE_TOP`` sets the lines per list; ``BENCH_PROFILE_ALL=1`` samples every thread.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DEFAULT_POSTGRES, machine, table
from bench.fanout_webhooks import HOOK_HEADERS, hook_verdict, run_webhooks
from bench.fanout_ws import DEFAULT_NATS, WS_HEADERS, run_websocket, ws_verdict
from interfaces.http.server import WEBSOCKET_IMPLEMENTATION


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=["websocket", "webhooks", "both"], default="both")
    p.add_argument("--store", choices=["sqlite", "nats", "both"], default="both", help="websocket")
    p.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin URL for a scratch database")
    p.add_argument("--nats", default=DEFAULT_NATS)
    p.add_argument("--sockets", default="100,1000", help="comma list of socket counts")
    p.add_argument("--events", type=int, default=200, help="measured events per socket count")
    p.add_argument("--warmup", type=int, default=10, help="unmeasured events first")
    p.add_argument("--pause", type=float, default=0.005, help="seconds between events")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="websocket: app and bare runs per store and socket count, one after the other; "
        "the ratio's verdict is their median",
    )
    p.add_argument(
        "--webhook-store", choices=["sqlite", "postgres", "both"], default="sqlite", help="webhooks"
    )
    p.add_argument("--endpoints", default="1,10", help="comma list of webhook counts")
    p.add_argument("--deliveries", type=int, default=1000, help="deliveries per run")
    p.add_argument("--modes", default="backlog,live", help="webhook runs: backlog, live")
    p.add_argument("--writers", type=int, default=16, help="concurrent task writers (webhooks)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds for a run's deliveries")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        help="before each server, wait up to this many seconds for 15 s under 15%% CPU",
    )
    p.add_argument("--dump", help="append each run's per-event figures to this file (JSON lines)")
    p.add_argument("--profile", action="store_true", help="py-spy the server (measured phase)")
    args = p.parse_args(argv)
    args.stores = ["sqlite", "nats"] if args.store == "both" else [args.store]
    both = ["sqlite", "postgres"]
    args.webhook_stores = both if args.webhook_store == "both" else [args.webhook_store]
    args.sockets = _ints(args.sockets)
    args.endpoints = _ints(args.endpoints)
    args.modes = [m for m in args.modes.split(",") if m]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    started = time.perf_counter()
    print(f"fan-out benchmark on {machine()}\n", flush=True)
    verdicts: list[str] = []
    if args.part in ("websocket", "both"):
        print(
            f"append -> WebSocket: uvicorn --ws {WEBSOCKET_IMPLEMENTATION}; {args.events} events "
            f"after {args.warmup} warm-up, one at a time, {args.pause * 1000:g} ms apart\n",
            flush=True,
        )
        rows = run_websocket(args)
        print("\n" + table(WS_HEADERS, rows) + "\n")
        verdicts += ws_verdict(rows)
    if args.part in ("webhooks", "both"):
        print(
            f"webhooks: {args.deliveries} deliveries per run, {args.writers} task writers\n",
            flush=True,
        )
        rows = run_webhooks(args)
        print("\n" + table(HOOK_HEADERS, rows) + "\n")
        verdicts += hook_verdict(rows)
    print("\n".join(verdicts))
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
