"""The API process relays: in embedded mode to its in-process bus, with NATS when asked to; the
probes report the bus and the relay."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
from starlette.testclient import TestClient

from infrastructure.memory_bus import MemoryBus
from infrastructure.nats_bus import NatsBus
from interfaces.http.app import create_app
from interfaces.http.role import api_role
from interfaces.services import migrate
from tests.e2e.conftest import Api, make_settings, signed_in
from tests.nats_server import NatsServer


def relayed(api: Api, seconds: float = 30) -> dict:
    """The bus check once the relay has caught up with the log."""
    deadline = time.monotonic() + seconds
    while True:
        bus = api.ok("GET", "/api/health/detailed")["data"]["checks"]["bus"]
        if bus["relay"]["position"] == api.position() and bus["relay"]["lag"] == 0:
            return bus
        assert time.monotonic() < deadline, bus
        time.sleep(0.05)


def test_in_embedded_mode_the_api_relays_to_its_in_process_bus(api):
    assert isinstance(api.role.services.bus, MemoryBus)
    api.project(name="Relayed")
    bus = relayed(api)
    assert bus["status"] == "healthy" and bus["kind"] == "in-process"
    assert bus["relay"]["running"] and bus["relay"]["error"] is None
    ready = api.get("/ready").json()
    assert ready["status"] == "ready" and ready["checks"]["bus"]["status"] == "healthy"


def test_with_nats_the_api_relays_when_asked_and_ready_needs_nats(tmp_path: Path):
    server = NatsServer(tmp_path / "nats")
    server.start()
    settings = msgspec.structs.replace(
        make_settings(tmp_path, None), nats_url=server.url, run_relay=True
    )
    migrate(settings)
    try:
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            api = signed_in(client)
            assert isinstance(api.role.services.bus, NatsBus)
            project = api.project(name="Over NATS")
            bus = relayed(api)
            assert bus["status"] == "healthy" and bus["kind"] == "nats" and bus["messages"] >= 1
            event = asyncio.run(_first_project_event(server.url))
            assert event.aggregate_id == project["id"] and event.type == "project.created"
            server.stop()
            response = client.get("/ready")
            assert response.status_code == 503
            assert response.json()["checks"]["bus"]["status"] == "unhealthy"
    finally:
        server.stop()


async def _first_project_event(url: str):  # type: ignore[no-untyped-def]
    bus = NatsBus(url)
    try:
        consumer = bus.durable("check", "taskwarden.*.project.created")
        async with asyncio.timeout(30):
            delivery = await anext(consumer)
        await delivery.ack()
        return delivery.event
    finally:
        await bus.close()


def test_without_the_relay_flag_an_api_with_nats_does_not_relay(tmp_path: Path):
    settings = msgspec.structs.replace(make_settings(tmp_path, None), nats_url="nats://127.0.0.1:1")
    assert not settings.relay_in_process
    migrate(settings)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert not api_role(client.app).services.relay.running
