"""Two API processes on a three-node NATS cluster (``serve --workers 2`` across machines): the
first relays the log to node 0, the second, API-only (``replica_settings``), is connected to
node 1; both write. A WebSocket client of the second gets every event of the project once, in
log order, and the stream read through node 2 holds every public event once, in order.

The two processes are two apps in this test process, each with its own services (store and
committer, read model, bus connection) on one Postgres database. About 7 s, most of it the
cluster electing its JetStream leader: in the main suite."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import msgspec
import pytest
from starlette.testclient import TestClient

from application.public_events import public_events
from interfaces.bootstrap.replicas import replica_settings
from interfaces.http.app import create_app
from interfaces.http.role import api_role
from interfaces.services import migrate
from tests.e2e.conftest import make_settings, signed_in
from tests.e2e.test_websocket import connected, subscribed, written_at
from tests.nats_cluster import NatsCluster, stream_positions

pytestmark = pytest.mark.slow  # servers and processes: make slow (CI runs it)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    nodes = NatsCluster(tmp_path / "nats")
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.close()


def test_every_event_reaches_a_socket_of_the_other_api_once_in_order(
    cluster: NatsCluster, tmp_path: Path, postgres_url: str
) -> None:
    base = make_settings(tmp_path, postgres_url)
    migrate(base)
    first = msgspec.structs.replace(base, nats_url=cluster.urls[0], run_relay=True)
    other = replica_settings(msgspec.structs.replace(base, nats_url=cluster.urls[1]), 1)
    with ExitStack() as stack:
        a, b = (
            signed_in(stack.enter_context(TestClient(create_app(s), raise_server_exceptions=False)))
            for s in (first, other)
        )
        assert api_role(a.client.app).services.relay.running
        assert not api_role(b.client.app).services.relay.running
        project = a.project()
        before = a.position()
        with connected(b) as socket:
            subscribed(socket, channel="project_updates", project_id=project["id"], since=before)
            last = None
            for n in range(12):  # both processes write, one after the other
                writer = (a, b)[n % 2]
                body = {"title": f"task {n}", "project_id": project["id"]}
                last = writer.client.post("/api/tasks/", json=body)
                assert last.status_code == 201, last.text
                task = last.json()["data"]["id"]
                last = writer.client.patch(f"/api/tasks/{task}", json={"title": f"done {n}"})
                assert last.status_code == 200, last.text
            assert last is not None
            messages = socket.events_until(written_at(last))
            assert api_role(b.client.app).sockets.hub.subscriptions == 1  # listened on the bus
        events, _ = public_events(api_role(a.client.app).services.ledger, 0, 1_000_000)
    ours = [e.position for e in events if e.position > before and e.team_id == "default"]
    assert [m["position"] for m in messages] == ours
    assert len(messages) == 24
    every = [e.position for e in events]
    assert stream_positions(cluster.urls[2]) == every  # the relay published the last one
