"""Where an event belongs: read from the event when it carries it, else its aggregate is loaded
once, however many subscriptions ask at the same time, and remembered."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from uuid import UUID, uuid4

from application.public_events import PublicEvent
from interfaces.ws_filter import Locator, Place
from tests.unit.test_memory_bus import run


class Repository:
    """Loads a task's question, slowly, counting the loads."""

    def __init__(self, task_id: str, project_id: str) -> None:
        self.loads = 0
        self.release = threading.Event()
        self._aggregate = SimpleNamespace(task_id=task_id, project_id=project_id)

    def get(self, aggregate_id: UUID) -> SimpleNamespace:
        self.loads += 1
        self.release.wait(10)
        return self._aggregate


def answered(question_id: str) -> PublicEvent:
    return PublicEvent(
        position=7,
        type="question.answered",
        team_id="team-1",
        aggregate="question",
        aggregate_id=question_id,
        version=2,
        timestamp="2025-01-01T00:00:00Z",
        actor=None,
        data={"answer": "postgres"},  # a later event: no task_id, no project_id
    )


def test_many_subscriptions_asking_at_once_load_the_aggregate_once():
    task_id, project_id = str(uuid4()), str(uuid4())
    repository = Repository(task_id, project_id)
    locator = Locator(repository)
    event = answered(str(uuid4()))

    async def scenario() -> list[Place]:
        asking = [asyncio.create_task(locator.locate(event)) for _ in range(100)]
        await asyncio.sleep(0)  # each has run to its wait for the load
        asking[0].cancel()  # one subscription goes away meanwhile: the others still get it
        repository.release.set()
        places = await asyncio.gather(*asking[1:])
        again = await locator.locate(event)  # remembered: no load
        return [*places, again]

    places = run(scenario)
    assert repository.loads == 1
    assert set(places) == {Place(task_id, project_id)}
