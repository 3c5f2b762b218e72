"""Events written before each event said where it belongs: read as written, and migrated once.

``tests/fixtures/events_v1.json`` holds the stored events (topic and state, byte for byte) of a
scenario written by the version before (commit 1eceac3): a project, a task executed until it
waited on a question and failed, the question withdrawn, the task and project updated, the queue
paused, a webhook created and disabled.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from application.public_events import UnplacedEventError, public_events, scan
from domain.task import Task
from infrastructure.place_migration import migrate_places
from infrastructure.relay_tracking import open_tracking
from infrastructure.settings import Settings
from interfaces.services import Services, build, migrate

FIXTURE = json.loads((Path(__file__).parent.parent / "fixtures" / "events_v1.json").read_text())
TEAM = "team.one"


@pytest.fixture
def legacy(tmp_path: Path, database_url: str | None) -> Iterator[tuple[Settings, Services]]:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, workers=0)
    migrate(settings)
    services = build(settings)
    services.ledger.recorder.insert_events(
        [
            StoredEvent(
                originator_id=UUID(row["originator_id"]),
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=row["state"].encode(),
            )
            for row in FIXTURE["events"]
        ]
    )
    yield settings, services
    services.close()


def stored(services: Services) -> list[Any]:
    notifications = services.ledger.recorder.select_notifications(0, 1_000)
    return [services.ledger.mapper.to_domain_event(n) for n in notifications]


def test_old_events_load_and_the_unplaced_ones_cannot_be_published_until_migrated(legacy):
    _, services = legacy
    task = services.ledger.repository.get(UUID(FIXTURE["task_id"]))
    assert isinstance(task, Task) and task.title == "renamed" and task.status == "failed"
    found = scan(services.ledger, 0, 1_000)
    later = [e for e in stored(services) if e.originator_version > 1]
    assert len(later) >= 6
    assert {f.position for f in found.failures} >= {n for n in _positions(services, later)}
    assert all(isinstance(f.error, UnplacedEventError) for f in found.failures)
    created = [e for e in found.events if e.type == "task.created"]
    assert created and created[0].project_id == FIXTURE["project_id"]  # upcast from its fields


def test_the_migration_writes_each_events_place_from_its_aggregate_once(legacy):
    settings, services = legacy
    before = services.ledger.repository.get(UUID(FIXTURE["task_id"]))
    rows_before = services.ledger.recorder.select_notifications(0, 1_000)
    tracking = open_tracking(settings)
    try:
        rewritten = migrate_places(services.ledger, tracking)
        assert rewritten == len([e for e in FIXTURE["events"] if e["originator_version"] > 1])
        assert migrate_places(services.ledger, tracking) == 0  # resumes after what it did
    finally:
        tracking.close()
    rows_after = services.ledger.recorder.select_notifications(0, 1_000)
    assert [(r.id, r.topic, r.originator_id, r.originator_version) for r in rows_after] == [
        (r.id, r.topic, r.originator_id, r.originator_version) for r in rows_before
    ]
    events = stored(services)
    assert all(e.team_id == TEAM for e in events)
    of_task = [e for e in events if "task_id" in e.PLACE or type(e).__qualname__[:5] == "Task."]
    assert len(of_task) >= 6 and all(e.project_id == FIXTURE["project_id"] for e in of_task)
    [withdrawn] = [e for e in events if type(e).__qualname__ == "HitlItem.Withdrawn"]
    assert withdrawn.item == "question" and withdrawn.task_id == FIXTURE["task_id"]
    after = services.ledger.repository.get(UUID(FIXTURE["task_id"]))
    assert after.state == before.state
    published, _ = public_events(services.ledger, 0, 1_000)  # raises on any failure
    types = {e.type for e in published}
    assert {"task.updated", "question.withdrawn", "queue.paused", "webhook.disabled"} <= types
    assert all(e.task_id == FIXTURE["task_id"] for e in published if e.aggregate == "question")


def _positions(services: Services, events: list[Any]) -> set[int]:
    positions: set[int] = set()
    for event in events:
        by_version = services.ledger.positions_of(event.originator_id)
        positions.add(by_version[event.originator_version])
    return positions


def test_an_old_event_naming_a_team_inside_its_data_is_still_migrated(legacy):
    """What an event carries is read from its top-level fields, not from a text search."""
    settings, services = legacy
    task_id = UUID(FIXTURE["task_id"])
    version = services.ledger.repository.get(task_id).version
    row = StoredEvent(
        originator_id=task_id,
        originator_version=version + 1,
        topic="domain.task:Task.Updated",
        state=json.dumps(
            {
                "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-01T10:00:00+00:00"},
                "changes": {"metadata": {"team_id": "elsewhere"}},
                "actor": "user:me",
                "request_id": "r",
            }
        ).encode(),
    )
    services.ledger.recorder.insert_events([row])
    tracking = open_tracking(settings)
    try:
        migrate_places(services.ledger, tracking)
    finally:
        tracking.close()
    last = stored(services)[-1]
    assert (last.originator_version, last.team_id) == (version + 1, TEAM)
    assert last.project_id == FIXTURE["project_id"]
    assert last.changes == {"metadata": {"team_id": "elsewhere"}}
