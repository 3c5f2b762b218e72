"""What every fault test proves about the writes its clients made: each acknowledged write is in
the store (read by id, and in the listing once it reached the write's position), no key made two
tasks, and the clients were never answered anything but what the test allows."""

from __future__ import annotations

from collections import Counter

from tests.faults.api import Api
from tests.faults.writers import Writers


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
