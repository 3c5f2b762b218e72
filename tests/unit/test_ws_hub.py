"""The process's hub of live subscriptions, on the in-process bus: one bus subscription per team,
shared by its listeners and released with the last one; a dropped subscription tells every
listener where events may be missing; a closed bus ends them."""

from __future__ import annotations

import asyncio
from typing import Any

from infrastructure.memory_bus import MemoryBus
from interfaces.ws.hub import Hub
from tests.unit.test_memory_bus import event, run


class Recorder:
    def __init__(self) -> None:
        self.items: list[Any] = []
        self.changed = asyncio.Event()

    def deliver(self, item: Any) -> None:
        self._add(item.position)

    def gap(self) -> None:
        self._add("gap")

    def ended(self, failure: BaseException | None) -> None:
        self._add(("ended", failure))

    def _add(self, item: Any) -> None:
        self.items.append(item)
        self.changed.set()

    async def until(self, count: int) -> list[Any]:
        while len(self.items) < count:
            self.changed.clear()
            await self.changed.wait()
        return self.items


async def until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.01)  # a task of the hub finishes its cancellation


def test_listeners_of_one_team_share_one_bus_subscription_and_get_only_their_team():
    async def scenario():
        bus, hub = MemoryBus(), Hub()
        one, two, other = Recorder(), Recorder(), Recorder()
        attachments = [
            hub.attach(bus, "team-1", one),
            hub.attach(bus, "team-1", two),
            hub.attach(bus, "team-2", other),
        ]
        for attachment in attachments:
            assert await attachment.started()
        assert hub.subscriptions == 2 and len(bus._live) == 2
        await bus.publish([event(1), event(2, team="team-2"), event(3)])
        assert await one.until(2) == [1, 3]
        assert await two.until(2) == [1, 3]
        assert await other.until(1) == [2]
        for attachment in attachments:
            attachment.detach()
        await until(lambda: not bus._live)
        assert hub.subscriptions == 0

    run(scenario)


def test_a_listener_attached_later_gets_events_from_then_on_and_one_left_keeps_getting_them():
    async def scenario():
        bus, hub = MemoryBus(), Hub()
        first, later = Recorder(), Recorder()
        kept = hub.attach(bus, "team-1", first)
        assert await kept.started()
        await bus.publish([event(1)])
        await first.until(1)
        gone = hub.attach(bus, "team-1", later)
        assert await gone.started()
        await bus.publish([event(2)])
        assert await later.until(1) == [2]
        gone.detach()
        await bus.publish([event(3)])
        assert await first.until(3) == [1, 2, 3]
        assert later.items == [2]
        kept.detach()

    run(scenario)


def test_a_dropped_subscription_marks_a_gap_for_every_listener_then_listens_again():
    async def scenario():
        bus, hub = MemoryBus(live_queue=2), Hub()
        one, two = Recorder(), Recorder()
        attachments = [hub.attach(bus, "team-1", one), hub.attach(bus, "team-1", two)]
        for attachment in attachments:
            assert await attachment.started()
        await bus.publish([event(1), event(2), event(3)])  # more than the queue holds at once
        await one.until(3)
        await until(lambda: len(bus._live) == 1)  # listening again
        await bus.publish([event(4)])
        for recorder in (one, two):
            items = await recorder.until(4)
            assert "gap" in items and items[-1] == 4
            before = items[: items.index("gap")]
            assert before == sorted(before) and set(before) <= {1, 2, 3}
        for attachment in attachments:
            attachment.detach()

    run(scenario)


def test_a_closed_bus_ends_every_listener_and_a_new_listener_gets_a_new_subscription():
    async def scenario():
        bus, hub = MemoryBus(), Hub()
        one = Recorder()
        attachment = hub.attach(bus, "team-1", one)
        assert await attachment.started()
        await bus.close()
        assert await one.until(1) == [("ended", None)]
        assert hub.subscriptions == 0
        attachment.detach()
        again = Recorder()
        fresh = hub.attach(bus, "team-1", again)
        await fresh.started()
        assert await again.until(1) == [("ended", None)]
        fresh.detach()

    run(scenario)


def test_a_listener_that_fails_to_take_an_event_is_told_of_a_gap_and_the_others_go_on():
    class Failing(Recorder):
        def deliver(self, item: Any) -> None:
            raise RuntimeError("broken listener")

    async def scenario():
        bus, hub = MemoryBus(), Hub()
        broken, fine = Failing(), Recorder()
        attachments = [hub.attach(bus, "team-1", broken), hub.attach(bus, "team-1", fine)]
        for attachment in attachments:
            assert await attachment.started()
        await bus.publish([event(1), event(2)])
        assert await fine.until(2) == [1, 2]
        assert await broken.until(2) == ["gap", "gap"]
        for attachment in attachments:
            attachment.detach()

    run(scenario)


def test_a_bus_that_cannot_listen_ends_its_listeners_after_a_few_tries():
    class Unreachable:
        prefix = "taskwarden"

        def __init__(self) -> None:
            self.tries = 0

        def live(self, subject_filter: str) -> Any:
            self.tries += 1
            raise ConnectionError("no bus")

    async def scenario():
        bus, hub, recorder = Unreachable(), Hub(), Recorder()
        attachment = hub.attach(bus, "team-1", recorder)
        items = await recorder.until(4)
        assert not await attachment.started()
        attachment.detach()
        return bus.tries, items

    tries, items = run(scenario)
    assert tries == 4
    assert items[:3] == ["gap", "gap", "gap"]
    ended, failure = items[3]
    assert ended == "ended" and isinstance(failure, ConnectionError)


def test_a_hub_stopped_from_outside_ends_its_listeners():
    async def scenario():
        bus, hub, recorder = MemoryBus(), Hub(), Recorder()
        attachment = hub.attach(bus, "team-1", recorder)
        assert await attachment.started()
        for task in asyncio.all_tasks():
            if task.get_name().startswith("ws-hub"):
                task.cancel()  # as a shutdown cancels what runs
        items = await recorder.until(1)
        attachment.detach()
        return items

    assert run(scenario) == [("ended", None)]
