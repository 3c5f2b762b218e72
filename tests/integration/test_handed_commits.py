"""The projection runner and the relay take this process's commits as committed
(``application/handed.py``): no read of the store for them, the same views and the same events
published as when read; what another process wrote in between is read from the store."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import msgspec

from application.commands import CreateProject, CreateTask
from application.committer import Committer
from application.ledger import Ledger
from application.projects import create_project
from application.public_events import PublicEvent, public_events
from application.relay import Relay
from application.store import Store
from application.tasks import create_task
from infrastructure.clock import SystemClock
from infrastructure.event_store import ledger_env
from infrastructure.memory_bus import MemoryBus
from infrastructure.relay_tracking import open_tracking
from infrastructure.settings import Settings
from interfaces.services import build, migrate
from projections.read_model import ReadModel
from tests.integration.test_nats_bus import run
from tests.integration.views_world import ALICE, BOB, World, all_tasks, world

SYSTEM = SystemClock()


class Reads:
    """Counts the store's reads of the log (``Store.notifications``)."""

    def __init__(self, w: World) -> None:
        self.count = 0
        real = w.store.notifications

        def notifications(after: int, limit: int) -> Any:
            self.count += 1
            return real(after, limit)

        w.store.notifications = notifications  # type: ignore[method-assign]


def another_process(w: World) -> World:
    """A second writer on the same store: its commits are handed to no consumer here."""
    other = World.__new__(World)
    other.settings = w.settings
    other.ledger = Ledger(env=ledger_env(w.settings, create_tables=False))
    other.committer = Committer(other.ledger)
    other.store = Store(other.ledger, other.committer, clock=SYSTEM)
    other.read_model = w.read_model
    return other


def close(other: World) -> None:
    other.committer.close()
    other.ledger.close()


def dump(read_model: ReadModel) -> dict[str, list[str]]:
    """Every row of every view table, as text, sorted; without SQLite's row ids (``rid``: the
    order rows were first written in, which a batch of many events may change)."""
    tables = [
        m.group(1)
        for statement in read_model.schema  # type: ignore[attr-defined]
        if (m := re.match(r"\s*CREATE (?:VIRTUAL )?TABLE IF NOT EXISTS (\w+)", statement))
    ]
    found = {}
    with read_model._reading() as cur:  # type: ignore[attr-defined]
        for table in tables:
            rows = cur.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608 - our names
            names = [column[0] for column in cur.description]
            found[table] = sorted(
                repr([v for n, v in zip(names, row, strict=True) if n != "rid"]) for row in rows
            )
    return found


def scenario(w: World, settle: Any) -> None:
    """Creates, updates, runs, cancels and deletes, ``settle()`` after each commit."""
    project = w.project("Web", description="the site")
    settle()
    ops = w.project("Ops", by=BOB)
    settle()
    ids = [w.task(project, f"Task {i}", description=f"number {i}") for i in range(4)]
    settle()
    w.task(ops, "Theirs", by=BOB)
    w.update(ids[0], title="Task zero", priority=3)
    settle()
    w.finish(ids[1])
    settle()
    w.start(ids[2])
    w.execute(ids[3])
    settle()
    w.cancel(ids[3])
    w.delete(ids[0])
    settle()


def test_handed_commits_make_the_views_a_rebuild_from_the_store_makes(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        reads = Reads(w)
        runner = w.runner()
        w.store.on_recorded(runner.hand)
        runner.catch_up()  # the runner runs (nothing is kept for one that never asked)
        before = reads.count
        scenario(w, runner.catch_up)
        assert runner.position == w.ledger.max_position()
        assert reads.count == before  # every event applied as committed
        live = dump(w.read_model)
        assert len(live["tw_tasks"]) == 4 and live["tw_queue"]
        w.read_model.reset()
        rebuilt = w.runner()  # handed nothing: reads every event from the store
        assert rebuilt.catch_up() == w.ledger.max_position()
        assert reads.count > 0
        assert dump(w.read_model) == live


def test_the_runner_reads_what_another_process_wrote_between_handed_commits(
    tmp_path: Path, database_url
):
    with world(tmp_path, database_url) as w:
        reads = Reads(w)
        runner = w.runner()
        w.store.on_recorded(runner.hand)
        project = w.project("Web")
        runner.catch_up()
        other = another_process(w)
        try:
            other.task(project, "Theirs")  # not handed: a gap before the next handed commit
        finally:
            close(other)
        w.task(project, "Mine")
        assert runner.catch_up() == w.ledger.max_position()
        assert reads.count > 0
        assert sorted(r.title for r in all_tasks(w.read_model, "team-a")) == ["Mine", "Theirs"]


def test_the_relay_publishes_handed_commits_as_read_ones_and_reads_across_a_gap(
    tmp_path: Path, database_url
):
    with world(tmp_path, database_url) as w:
        tracking = open_tracking(w.settings)
        tracking.migrate()
        reads = Reads(w)

        async def scenario() -> tuple[list[PublicEvent], int, int]:
            bus = MemoryBus(source=w.ledger)
            relay = Relay(w.store, bus, tracking, poll_interval=3600, clock=SYSTEM)
            w.store.on_recorded(relay.hand)
            live = bus.live("taskwarden.>")
            relay.start()
            got: list[PublicEvent] = []
            try:
                await _until(lambda: reads.count == 1)  # its first step read the empty log
                project = await asyncio.to_thread(w.project, "Web")
                await asyncio.to_thread(w.task, project, "Mine")
                await _until(lambda: relay.position == w.ledger.max_position())
                handed_only = reads.count - 1
                other = another_process(w)
                try:
                    await asyncio.to_thread(other.task, project, "Theirs")
                finally:
                    close(other)
                await asyncio.to_thread(w.task, project, "Mine again")
                await _until(lambda: relay.position == w.ledger.max_position())
                async with asyncio.timeout(30):
                    while len(got) < len(expected_events(w)):
                        got.append(await anext(live))
                return got, handed_only, reads.count
            finally:
                await relay.stop()
                await bus.close()

        try:
            got, handed_only, after_gap = run(scenario)
        finally:
            tracking.close()
        assert handed_only == 0 and after_gap > 0
        assert [msg(e) for e in got] == [msg(e) for e in expected_events(w)]
        assert [e.data.get("title") for e in got if e.type == "task.created"] == [
            "Mine",
            "Theirs",
            "Mine again",
        ]


def expected_events(w: World) -> list[PublicEvent]:
    events, _ = public_events(w.ledger, 0, 1_000_000)
    return events


def msg(event: PublicEvent) -> bytes:
    return msgspec.json.encode(event)


async def _until(condition: Any, seconds: float = 30) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


def test_the_services_hand_their_own_commits_to_their_runner_relay_and_budget_watch(
    tmp_path: Path, database_url
):
    """``interfaces.services.build`` wires the handing: once the runner, the relay and the
    budget watch have asked, what the process commits reaches them without a read back."""
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url, workers=0, run_projections=False
    )
    migrate(settings)
    services = build(settings)
    read_back: list[int] = []
    real = services.store.notifications

    def notifications(after: int, limit: int) -> Any:
        found = real(after, limit)
        read_back.extend(n.id for n in found)
        return found

    services.store.notifications = notifications  # type: ignore[method-assign]
    try:
        services.runner.catch_up()  # each asks once (the log is empty): from now on, handed
        run(services.relay.catch_up)
        project = create_project(services.store, CreateProject(name="P"), ALICE).data["id"]
        services.budgets.catch_up(services.ledger.max_position())  # its first round reads
        read_back.clear()
        task = create_task(services.store, CreateTask(title="t", project_id=project), ALICE)
        head = services.ledger.max_position()
        assert services.runner.catch_up() == head
        assert run(services.relay.catch_up) == head
        services.budgets.catch_up(head)
        assert services.budgets.position == head
        assert read_back == []  # none of them read a single event back
        assert [r.id for r in all_tasks(services.read_model, ALICE.team_id)] == [task.data["id"]]
    finally:
        run(services.relay.stop)
        services.close()
