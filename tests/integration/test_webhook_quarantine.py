"""The webhook queue and an event it cannot queue (the store in memory, the in-process bus, a real
receiver): retried, quarantined, alerted to its team and acknowledged; other teams' webhooks and
the events after it are delivered; a retry after the fix queues it again from the store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from application.commands import CreateProject
from application.consumer_state import ConsumerState, Policy
from application.projects import create_project
from application.public_events import public_events
from application.quarantine import QuarantineService
from application.retry_requests import RetryRequests
from application.store import Store
from application.webhooks.attempts import Attempts
from application.webhooks.dispatch import Dispatcher
from application.webhooks.handlers import CreateWebhook, create_webhook
from domain.quarantine import RELEASED
from domain.system import System, system_id
from domain.values import Actor
from infrastructure.memory_bus import MemoryBus
from infrastructure.settings import Settings
from infrastructure.webhook_sender import HttpSender
from tests.integration.test_webhook_delivery import ADMIN, ALLOWED, FAST, hook, received
from tests.poison import nested
from tests.stores import open_store
from tests.webhook_receiver import Receiver, receiving

BOB = Actor(id="bob", team_id="team-b", request_id="r-2")


@pytest.fixture
def store(event_store: dict[str, Any], tmp_path: Path) -> Iterator[Store]:
    built = open_store(Settings(data_dir=tmp_path, **event_store))
    yield built
    built.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


def dispatcher_for(store: Any, bus: Any, subjects: str) -> tuple[Dispatcher, QuarantineService]:
    service = QuarantineService(store)
    attempts = Attempts(store, HttpSender(ALLOWED, timeout=5), jitter=lambda: 0.0, schedule=FAST)
    policy = Policy(max_attempts=2, backoff=0.01, max_backoff=0.04)
    dispatcher = Dispatcher(
        store,
        bus,
        attempts,
        subjects=subjects,
        recheck=0.2,
        state=ConsumerState("webhooks", policy, clock=store.clock),
        quarantine=service,
    )
    dispatcher.guard.retries = RetryRequests(service, "webhooks", every=0.05)
    return dispatcher, service


def names(requests: list[Any]) -> list[str]:
    return [json.loads(r.body)["data"]["name"] for r in requests]


async def until_released(service: QuarantineService, ref: str) -> Any:
    async with asyncio.timeout(30):
        while (entry := await asyncio.to_thread(service.find, ref)).status != RELEASED:
            await asyncio.sleep(0.02)
    return entry


def test_an_event_that_cannot_be_queued_is_quarantined_and_the_queue_goes_on(store, receiver):
    hook(store, receiver.url("/a"), "project.created")
    create_webhook(
        store, CreateWebhook(url=receiver.url("/b"), events=["project.created"]), BOB, ALLOWED
    )
    before = store.max_position()
    for name, by in (("a1", ADMIN), ("a2", ADMIN), ("b1", BOB), ("a3", ADMIN)):
        create_project(store, CreateProject(name=name), by)
    stored, _ = public_events(store.ledger, before, 100)
    created = [e for e in stored if e.type == "project.created"]
    # a bug in the relay publishes a2 with data the payload cannot take
    poisoned = msgspec.structs.replace(created[1], data={"name": "a2", "deep": nested(1_000)})
    bus = MemoryBus()
    # no reading ahead from the store: the bus's (broken) copy is what the queue takes
    dispatcher, service = dispatcher_for(store, bus, "taskwarden.*.*.*")

    async def scenario() -> tuple[list[Any], list[Any], Any]:
        dispatcher.start()
        try:
            await bus.publish([created[0], poisoned, *created[2:]])
            mine = await received(receiver, "/a", 2)
            theirs = await received(receiver, "/b", 1)
            [entry] = await asyncio.to_thread(service.entries)
            await asyncio.to_thread(service.request_retry, str(entry.id), "user:admin", "req")
            await until_released(service, str(entry.id))
            await received(receiver, "/a", 3)
            return mine, theirs, entry
        finally:
            await dispatcher.stop()
            await bus.close()

    mine, theirs, entry = asyncio.run(scenario())
    assert names(mine) == ["a1", "a3"] and names(theirs[:1]) == ["b1"]
    assert (entry.consumer, entry.position) == ("webhooks", poisoned.position)
    assert (entry.team_id, entry.error_type, entry.attempts) == ("team-a", "RecursionError", 2)
    assert store.get(System, system_id("team-a")).notices == 1
    assert names(receiver.on("/a")) == ["a1", "a3", "a2"]  # released: late, read from the store
    assert dispatcher.guard.state.quarantined == 1
