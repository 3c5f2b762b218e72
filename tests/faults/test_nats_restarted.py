"""NATS stopped (SIGTERM), then killed (SIGKILL), and started again each time while a writer
creates tasks, with a WebSocket client and a webhook receiver attached.

The deployment of README's "Postgres mode": ``serve``, ``relay`` and ``webhooks`` processes on a
fresh Postgres database and a NATS server of the test's own (JetStream on file storage). Writes
never depend on NATS: every one is acknowledged. The WebSocket client reconnects and resumes by
position whenever its socket ends (it is dropped once while NATS is dead); the webhook receiver
records every request. The last writes are made while NATS is dead, so nothing written after it
is back can bring the missing ones along. Afterwards each
has every event of the writes, in log order: the WebSocket client exactly once each, the webhook
receiver once each after dropping repeated delivery ids (at least once, docs/api.md); and the
stream holds every public event of the log once, in order (the kill lost nothing it had stored).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infrastructure.settings import Settings
from tests.faults.api import Api, wait_for
from tests.faults.checks import (
    assert_each_event_delivered_once_in_order,
    assert_no_write_lost_or_doubled,
    deliveries,
)
from tests.faults.deployment import postgres_mode
from tests.faults.log_tail import public_positions
from tests.faults.private_nats import PrivateNats
from tests.faults.processes import Processes
from tests.faults.writers import Writers
from tests.faults.ws_recorder import WsRecorder
from tests.webhook_receiver import Receiver, receiving

pytestmark = pytest.mark.faults

STEP = 20  # writes let through before each outage, and again while NATS is down (80 in all)
HOOK = "/hook"


def test_events_reach_websocket_and_webhook_whole_and_in_order_across_nats_stops_and_kills(
    postgres_url: str, workdir: Path, processes: Processes, private_nats: PrivateNats
) -> None:
    up = postgres_mode(processes, workdir, postgres_url, private_nats.url)
    admin = up.admin
    with receiving() as receiver:
        admin.write("/api/webhooks", {"url": receiver.url(HOOK), "events": ["task.*"]})
        project, since = admin.write("/api/projects/", {"name": "NATS restarted"})
        ws = WsRecorder(lambda: up.server.url, admin.token, project["id"], since).start()
        writers = Writers(
            admin.mint("operator"), project["id"], clients=2, per_client=40, allowed=0
        )
        try:
            writers.start()
            flowing(writers, receiver, ws)
            private_nats.stop()
            writers.wait_acknowledged(writers.allow_more(STEP))  # written while NATS is stopped
            private_nats.start()
            flowing(writers, receiver, ws)
            private_nats.kill()
            ws.drop()  # the client connects again and subscribes while NATS is down
            wait_for(lambda: ws.sockets >= 2, "the WebSocket client to connect again")
            writers.wait_acknowledged(writers.allow_more(STEP))  # the last writes: NATS is dead
            private_nats.start()
            writers.join()
            expected = event_positions(admin, project["id"], writers.highest_position())
            ws.wait(lambda got: set(got) >= set(expected), "every event over the WebSocket")
            wait_for(
                lambda: {p for _, p in deliveries(receiver, HOOK)} >= set(expected),
                "every event at the webhook receiver",
                timeout=120,
            )
        finally:
            writers.stop()
            ws.stop()
        received = deliveries(receiver, HOOK)
    print(f"{writers.summary()}; WebSocket: {ws.sockets} sockets, ended {ws.ends}; "
          f"webhook: {len(received)} requests for {len(expected)} events")  # fmt: skip
    assert_no_write_lost_or_doubled(admin, writers, project["id"], allowed={201})
    assert private_nats.positions() == public_positions(Settings(database_url=postgres_url))
    assert ws.resyncs == []
    assert ws.positions == sorted(expected)  # in log order, no gap, no duplicate
    assert_each_event_delivered_once_in_order(received, expected)


def flowing(writers: Writers, receiver: Receiver, ws: WsRecorder) -> None:
    """Lets STEP more writes through and waits until both ends receive events again."""
    hooked, heard = len(receiver.on(HOOK)) + 5, len(ws.positions) + 5
    writers.allow_more(STEP)
    wait_for(lambda: len(receiver.on(HOOK)) >= hooked, "webhooks flowing")
    ws.wait(lambda got: len(got) >= heard, "WebSocket flowing")


def event_positions(api: Api, project_id: str, min_position: int) -> list[int]:
    """The positions of every event of every task of the project, from the store."""
    tasks = api.project_tasks(project_id, min_position)
    return sorted(e["position"] for t in tasks for e in api.history(t["id"]))
