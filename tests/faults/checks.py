"""What the fault tests prove. About the writes the clients made: each acknowledged write is in
the store (read by id, and in the listing once it reached the write's position), no key made two
tasks, and the clients were never answered anything but what the test allows. About webhook
deliveries: each event once, in log order, once repeats of a delivery id are dropped."""

from __future__ import annotations

import json
from collections import Counter

from tests.faults.api import Api
from tests.faults.writers import Writers
from tests.webhook_receiver import Receiver


def assert_no_write_lost_or_doubled(
    api: Api, writers: Writers, project_id: str, allowed: set[int]
) -> None:
    unexpected = writers.unexpected(allowed)
    assert not unexpected, f"answers outside {sorted(allowed)} or timeouts: {unexpected[:10]}"
    missing = [k for k, key in writers.keys.items() if not key.acknowledged]
    assert not missing, f"never acknowledged: {missing[:10]}; answers: {writers.statuses()}"
    twice = {
        k: ids
        for k, key in writers.keys.items()
        if len(ids := {a.task_id for a in key.created}) > 1
    }
    assert not twice, f"one Idempotency-Key answered with two task ids: {twice}"
    acknowledged = writers.acknowledged_ids()
    for key, task_id in acknowledged.items():
        task = api.data("GET", f"/api/tasks/{task_id}")
        assert task["title"] == key, task
    listed = api.project_tasks(project_id, writers.highest_position())
    doubled = {t: n for t, n in Counter(t["title"] for t in listed).items() if n > 1}
    assert not doubled, f"keys that made more than one task: {doubled}"
    assert {t["id"] for t in listed} == set(acknowledged.values())


def deliveries(receiver: Receiver, path: str) -> list[tuple[str, int]]:
    """(delivery id, position) of every request ``path`` received, in arrival order."""
    requests = receiver.on(path)
    return [(r.header("webhook-id"), int(json.loads(r.body)["position"])) for r in requests]


def assert_each_event_delivered_once_in_order(
    received: list[tuple[str, int]], expected: list[int]
) -> None:
    """At least once, deduplicated by delivery id (docs/api.md, Webhooks: a repeat carries the
    id already seen): once the repeats are dropped, every expected position came exactly once,
    in log order, and no position came under two delivery ids."""
    first: dict[str, int] = {}
    for delivery_id, position in received:
        assert first.setdefault(delivery_id, position) == position, (delivery_id, position)
    positions = list(first.values())  # dicts keep first-arrival order
    assert len(set(positions)) == len(positions), "one event under two delivery ids"
    assert positions == sorted(expected), (
        f"missing {sorted(set(expected) - set(positions))[:20]}, "
        f"extra {sorted(set(positions) - set(expected))[:20]}, "
        f"out of order: {positions != sorted(positions)}"
    )
