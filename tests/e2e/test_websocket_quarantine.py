"""WebSocket feeds and poison (SQLite and Postgres, through the real app, its bus and its relay):
an event a socket cannot convert or place is skipped after bounded tries and quarantined once for
consumer ``websocket``, however many sockets meet it; the sockets stay open and later events
arrive; a retry after the fix releases it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from application.quarantine import QuarantineService
from domain.quarantine import QUARANTINED, RELEASED
from infrastructure.settings import Settings
from tests.e2e.conftest import Api
from tests.e2e.test_websocket import connected, serving, subscribed
from tests.poison import corrupt_update, fix_topic, unknown_topic_row, wait_until


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    quick = msgspec.structs.replace(
        settings,
        consumer_max_attempts=2,
        consumer_backoff_seconds=0.01,
        consumer_max_backoff_seconds=0.05,
    )
    with serving(quick) as api:
        yield api


def created_task(api: Api, project_id: str, title: str) -> tuple[str, int]:
    body = api.ok("POST", "/api/tasks/", 201, json={"title": title, "project_id": project_id})
    return body["data"]["id"], body["meta"]["position"]


def entries(api: Api, consumer: str) -> list[Any]:
    service: QuarantineService = api.role.services.quarantine
    return service.entries(consumer)


def test_a_stored_event_no_socket_can_convert_is_quarantined_once_and_later_events_arrive(api):
    ledger = api.role.services.ledger
    project = api.project()["id"]
    since = api.position()
    position, topic = unknown_topic_row(ledger, "default")
    _, after = created_task(api, project, "after the poison")
    with connected(api) as first, connected(api) as second:
        for socket in (first, second):
            subscribed(socket, channel="task_updates", project_id=project, since=since)
        got = [socket.events_until(after) for socket in (first, second)]
        assert first.ask(type="ping")["type"] == "pong"  # still open
    for events in got:
        assert [e["position"] for e in events] == [after]
    [entry] = entries(api, "websocket")
    assert (entry.position, entry.topic, entry.team_id) == (position, topic, "default")
    assert entry.status == QUARANTINED and entry.attempts >= 2  # both sockets may count

    fix_topic(topic)
    service: QuarantineService = api.role.services.quarantine
    service.request_retry(str(entry.id), "user:admin", "req-1")
    wait_until(lambda: service.find(str(entry.id)).status == RELEASED)


def test_a_live_event_is_placed_from_itself_even_when_its_task_can_no_longer_be_loaded(api):
    ledger = api.role.services.ledger
    project = api.project()["id"]
    broken, _ = created_task(api, project, "will break")
    with connected(api) as socket:
        subscribed(socket, channel="task_updates", project_id=project)
        position = corrupt_update(ledger, broken)  # the task cannot be loaded any more
        _, after = created_task(api, project, "after it")
        events = socket.events_until(after)
        assert socket.ask(type="ping")["type"] == "pong"
    assert [e["position"] for e in events] == [position, after]
    assert events[0]["data"]["task_id"] == broken
    assert not entries(api, "websocket")
