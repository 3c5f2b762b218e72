"""The webhook recorder: outcomes that arrive while a batch is written go in the next batch, in
order; a stop writes what is pending first."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from application.webhooks.attempts import Outcome, WebhookResponse
from application.webhooks.recorder import Recorder
from tests.unit.test_memory_bus import run


class Attempts:
    """Records batches; the first write waits until released."""

    def __init__(self) -> None:
        self.batches: list[list[Outcome]] = []
        self.release = threading.Event()

    def record_many(self, outcomes: list[Outcome]) -> list[Any]:
        self.release.wait(10)
        self.batches.append(list(outcomes))
        return [outcome.key for outcome in outcomes]


def outcome() -> Outcome:
    response = WebhookResponse(status=200, duration=0.01)
    return Outcome(uuid4(), uuid4(), datetime.now(UTC), response)


def test_outcomes_arriving_during_a_write_go_in_one_next_batch_and_stop_writes_them():
    attempts = Attempts()
    outcomes = [outcome() for _ in range(4)]

    async def scenario() -> list[Any]:
        recorder = Recorder(attempts)  # type: ignore[arg-type]
        first = recorder.add(outcomes[0])
        await asyncio.sleep(0)  # the first batch is being written (held)
        rest = [recorder.add(o) for o in outcomes[1:]]
        attempts.release.set()
        await recorder.stop()
        return [f.result() for f in [first, *rest]]

    recorded = run(scenario)
    assert attempts.batches == [outcomes[:1], outcomes[1:]]
    assert recorded == [o.key for o in outcomes]
