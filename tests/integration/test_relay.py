"""The relay over a real store (SQLite and Postgres) and a real NATS: every public event once and
in order downstream, across restarts, crashes between publishing and recording, and a NATS
server stopped in the middle."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from application import projects
from application.commands import CreateProject
from application.public_events import PublicEvent, public_events
from application.relay import Relay
from infrastructure.clock import SystemClock
from infrastructure.memory_bus import MemoryBus
from infrastructure.nats_bus import NatsBus
from infrastructure.relay_tracking import open_tracking
from infrastructure.settings import Settings
from interfaces.services import build, migrate
from tests.integration.test_nats_bus import acked, bus_for, next_is_a_marker, run
from tests.integration.views_world import ALICE, BOB, World, world
from tests.nats_server import NatsServer

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = SystemClock()


@pytest.fixture
def store(tmp_path: Path, database_url: str | None) -> Iterator[World]:
    """A ledger fed by the real handlers, with the relay's tracking table migrated."""
    with world(tmp_path, database_url) as built:
        tracking = open_tracking(built.settings)
        tracking.migrate()
        built.tracking = tracking  # type: ignore[attr-defined]
        yield built
        tracking.close()


def write(w: World, tasks: int) -> None:
    """A project and ``tasks`` tasks for team-a, and a project for team-b (with the claims and
    other events that are not published in between)."""
    project = w.project(f"Web {w.ledger.max_position()}", slug=f"web-{w.ledger.max_position()}")
    for i in range(tasks):
        w.task(project, f"Task {i}")
    w.project(f"Ops {w.ledger.max_position()}", by=BOB)


def published(w: World, after: int = 0) -> list[int]:
    """The positions the log publishes after ``after``, read straight from the store."""
    events, _ = public_events(w.ledger, after, 1_000_000)
    return [e.position for e in events]


async def positions(consumer: Any, count: int) -> list[int]:
    """``count`` deliveries, each acknowledged; fails if any comes more than once."""
    got = await acked(consumer, count)
    assert {attempt for _, attempt in got} <= {1}, got
    return [position for position, _ in got]


class PortOnly:
    """The bus through the Bus port alone: the relay cannot ask what the bus already stored, so
    it publishes again whatever it had not recorded (and the stream must drop it)."""

    def __init__(self, bus: Any) -> None:
        self.publish, self.live, self.durable, self.close = (
            bus.publish,
            bus.live,
            bus.durable,
            bus.close,
        )


class CrashingTracking:
    """Reads the real position, and "dies" before recording one."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def get(self, name: str) -> int | None:
        return self.inner.get(name)

    def set(self, name: str, position: int) -> None:
        raise RuntimeError("killed between publishing and recording")


def test_the_relay_publishes_every_public_event_once_in_log_order(store, nats_url, nats_stream):
    _, prefix = nats_stream
    write(store, 12)
    expected = published(store)

    async def scenario():
        bus = bus_for(nats_url, nats_stream)
        try:
            relay = Relay(store.ledger, bus, store.tracking, batch=7, clock=SYSTEM)
            position = await relay.catch_up()
            consumer = bus.durable("all", f"{prefix}.>")
            got = await positions(consumer, len(expected))
            marker = store.ledger.max_position() + 1
            return position, got, await next_is_a_marker(bus, consumer, marker), relay.lag
        finally:
            await bus.close()

    position, got, nothing_more, lag = run(scenario)
    assert got == expected and nothing_more
    assert position == store.ledger.max_position() == store.tracking.get("relay") and lag == 0


def test_the_relay_resumes_from_its_tracked_position_after_a_restart(store, nats_url, nats_stream):
    _, prefix = nats_stream
    write(store, 3)
    first = published(store)

    async def relay_once() -> tuple[int, int]:
        bus = bus_for(nats_url, nats_stream)
        try:
            relay = Relay(store.ledger, PortOnly(bus), store.tracking, clock=SYSTEM)  # type: ignore[arg-type]
            await relay.catch_up()
            return relay.position, relay.published
        finally:
            await bus.close()

    assert run(relay_once) == (store.ledger.max_position(), len(first))
    write(store, 4)
    second = published(store, after=store.tracking.get("relay"))
    assert run(relay_once) == (store.ledger.max_position(), len(second))

    async def downstream():
        bus = bus_for(nats_url, nats_stream)
        try:
            consumer = bus.durable("all", f"{prefix}.>")
            got = await positions(consumer, len(first + second))
            return got, await next_is_a_marker(bus, consumer, store.ledger.max_position() + 1)
        finally:
            await bus.close()

    assert run(downstream) == (first + second, True)


def test_a_relay_killed_between_publishing_and_recording_causes_no_duplicate_downstream(
    store, nats_url, nats_stream
):
    _, prefix = nats_stream
    write(store, 5)
    expected = published(store)

    async def scenario():
        bus = bus_for(nats_url, nats_stream)
        try:
            killed = Relay(store.ledger, bus, CrashingTracking(store.tracking), clock=SYSTEM)  # type: ignore[arg-type]
            with pytest.raises(RuntimeError, match="killed"):
                await killed.step()  # published the batch, recorded nothing
            assert store.tracking.get("relay") is None
            blind = Relay(store.ledger, PortOnly(bus), store.tracking, clock=SYSTEM)  # type: ignore[arg-type]
            await blind.catch_up()  # publishes the whole batch again
            consumer = bus.durable("all", f"{prefix}.>")
            got = await positions(consumer, len(expected))
            marker = store.ledger.max_position() + 1
            return blind.published, got, await next_is_a_marker(bus, consumer, marker)
        finally:
            await bus.close()

    republished, got, nothing_more = run(scenario)
    assert republished == len(expected) and got == expected and nothing_more


def test_a_restarted_relay_skips_what_the_bus_already_stored(store, nats_url, nats_stream):
    write(store, 5)

    async def scenario():
        bus = bus_for(nats_url, nats_stream)
        try:
            killed = Relay(store.ledger, bus, CrashingTracking(store.tracking), clock=SYSTEM)  # type: ignore[arg-type]
            with pytest.raises(RuntimeError):
                await killed.step()
            again = Relay(store.ledger, bus, store.tracking, clock=SYSTEM)
            await again.catch_up()
            return again.published, again.position
        finally:
            await bus.close()

    assert run(scenario) == (0, store.ledger.max_position())
    assert store.tracking.get("relay") == store.ledger.max_position()


def test_nats_stopped_and_restarted_mid_stream_loses_nothing(tmp_path, nats_stream):
    with world(tmp_path / "store", None) as w:
        tracking = open_tracking(w.settings)
        tracking.migrate()
        server = NatsServer(tmp_path / "nats")
        server.start()
        try:
            outage = run(lambda: _relay_through_an_outage(w, tracking, server, nats_stream), 150)
        finally:
            server.stop()
    noticed, got, expected = outage
    assert noticed  # the relay saw NATS go and backed off
    assert got == expected


async def _relay_through_an_outage(
    w: World, tracking: Any, server: NatsServer, nats_stream: tuple[str, str]
) -> tuple[bool, list[int], list[int]]:
    _, prefix = nats_stream
    bus = bus_for(server.url, nats_stream, publish_timeout=1.0, reconnect_wait=0.2)
    relay = Relay(
        w.ledger, bus, tracking, batch=5, poll_interval=0.05, max_backoff=0.5, clock=SYSTEM
    )
    w.committer.on_commit(relay.poke)
    relay.start()
    try:
        await asyncio.to_thread(write, w, 4)
        await _until(lambda: relay.lag == 0 and relay.position > 0)
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(write, w, 6)  # committed while NATS is down
        await _until(lambda: relay.error is not None)
        noticed = relay.lag > 0
        await asyncio.to_thread(server.start)
        await asyncio.to_thread(write, w, 3)
        head = w.ledger.max_position()
        await _until(lambda: relay.position == head and relay.error is None, 60)
        expected = published(w)
        got = await positions(bus.durable("all", f"{prefix}.>"), len(expected))
        return noticed, got, expected
    finally:
        await relay.stop()
        await bus.close()


async def _until(condition: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_in_embedded_mode_a_durable_consumer_resumes_from_the_store_after_a_restart(store):
    """The in-process bus keeps 3 events: the consumer reads the rest from the store."""
    write(store, 1)

    async def first_run() -> tuple[int, int, int]:
        bus, relay = embedded(store)
        try:
            await relay.catch_up()
            start = store.ledger.max_position()  # a new consumer starts here
            consumer = bus.durable("hooks", "taskwarden.*.task.>")
            await asyncio.to_thread(write, store, 2)
            await relay.catch_up()
            first = await anext(consumer)
            await first.ack()
            second = await anext(consumer)  # handed out, never acknowledged: the process dies
            return start, first.event.position, second.event.position
        finally:
            await bus.close()

    start, first, second = run(first_run)
    assert [first, second] == tasks_after(store, start)
    write(store, 4)  # while no process runs

    async def second_run() -> tuple[list[int], list[int], list[int]]:
        bus, relay = embedded(store)
        try:
            await relay.catch_up()
            consumer = bus.durable("hooks", "taskwarden.*.task.>")
            expected = tasks_after(store, first)
            got = await positions(consumer, len(expected))
            await asyncio.to_thread(write, store, 1)
            await relay.catch_up()
            return expected, got, await positions(consumer, 1)
        finally:
            await bus.close()

    expected, got, live = run(second_run)
    assert got == expected and expected[0] == second and len(expected) == 5
    assert live == tasks_after(store, expected[-1])


def embedded(w: World) -> tuple[MemoryBus, Relay]:
    bus = MemoryBus(source=w.ledger, tracking=w.tracking, retain=3)  # type: ignore[attr-defined]
    return bus, Relay(w.ledger, bus, w.tracking, batch=4, clock=SYSTEM)  # type: ignore[attr-defined]


def tasks_after(w: World, after: int) -> list[int]:
    events, _ = public_events(w.ledger, after, 1_000_000)
    return [e.position for e in events if e.aggregate == "task"]


def test_the_relay_wakes_on_a_commit_without_waiting_for_its_poll(tmp_path):
    with world(tmp_path, None) as w:
        tracking = open_tracking(w.settings)
        tracking.migrate()

        async def scenario() -> PublicEvent:
            bus = MemoryBus(source=w.ledger)
            relay = Relay(w.ledger, bus, tracking, poll_interval=3600, clock=SYSTEM)
            w.committer.on_commit(relay.poke)
            relay.start()
            try:
                await asyncio.to_thread(w.project, "Before")
                await _until(lambda: relay.position == w.ledger.max_position())
                live = bus.live("taskwarden.*.project.*")
                await asyncio.to_thread(w.project, "Woken")
                async with asyncio.timeout(60):  # well before the poll
                    return await anext(live)
            finally:
                await relay.stop()
                await bus.close()

        assert run(scenario).type == "project.created"


@pytest.mark.slow
def test_taskwarden_relay_runs_until_sigterm(tmp_path):
    """The CLI against its own NATS server (the default stream and subjects are its own)."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    env = {
        **os.environ,
        "TASKWARDEN_DATA_DIR": str(tmp_path / "data"),
        "TASKWARDEN_NATS_URL": server.url,
    }
    env.pop("TASKWARDEN_DATABASE_URL", None)
    cli = [sys.executable, "-m", "interfaces.cli"]
    try:
        subprocess.run([*cli, "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
        with world(tmp_path / "data", None) as w:
            write(w, 2)
            head = w.ledger.max_position()
            last = published(w)[-1]
        relay = subprocess.Popen(
            [*cli, "relay"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            tracking = open_tracking(w.settings)
            deadline = time.monotonic() + 30
            while tracking.get("relay") != head:
                assert time.monotonic() < deadline and relay.poll() is None
                time.sleep(0.1)
        finally:
            relay.send_signal(signal.SIGTERM)
            output = relay.communicate(timeout=60)[0].decode()
        assert relay.returncode == 0, output
        assert "relaying" in output and "stopped" in output

        async def stored() -> int | None:
            bus = NatsBus(server.url)
            try:
                return await bus.last_position()
            finally:
                await bus.close()

        assert run(stored) == last
    finally:
        server.stop()


def test_two_api_processes_share_one_nats_and_one_relay(tmp_path, postgres_url):
    """Writes of both processes reach a live subscriber of the second, in log order, while only
    the first relays (it finds the second's commits by polling)."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    settings = Settings(
        data_dir=tmp_path, database_url=postgres_url, nats_url=server.url, run_projections=False
    )
    migrate(settings)
    first, second = build(settings), build(settings)

    async def scenario() -> tuple[list[str], list[int]]:
        first.relay.start()
        try:
            live = second.bus.live("taskwarden.*.project.created")
            await live.started()  # type: ignore[attr-defined]
            for i, services in enumerate([first, second, first, second]):
                await asyncio.to_thread(
                    projects.create_project, services.store, CreateProject(name=f"P{i}"), ALICE
                )
            got = [await anext(live) for _ in range(4)]
            return [e.data["name"] for e in got], [e.position for e in got]
        finally:
            await first.relay.stop()
            await first.bus.close()
            await second.bus.close()

    try:
        names, got = run(scenario)
        assert names == ["P0", "P1", "P2", "P3"] and got == sorted(got)
    finally:
        first.close()
        second.close()
        server.stop()
