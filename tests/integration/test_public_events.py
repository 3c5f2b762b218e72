"""What leaves the system: public events from a real store, their teams, subjects and names."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from application.commands import CreateProject, CreateTask, ExecuteTask
from application.execution_reports import finish, report
from application.projects import create_project
from application.public_events import public_events, seed_types, subject
from application.tasks import create_task
from domain.values import Actor
from domain.webhook import Webhook
from infrastructure.settings import Settings
from interfaces.services import Services, build, migrate
from tests.builders import execute_task

ME = Actor(id="user:me", team_id="team.one", request_id="r")
SECRET = "whsec_c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1sZWF2ZQ=="


@pytest.fixture
def services(tmp_path: Path, database_url: str | None) -> Iterator[Services]:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, workers=0)
    migrate(settings)
    built = build(settings)
    yield built
    built.close()


def world(services: Services) -> str:
    """A project with a slug, a task run to failure while it waited on a question, a webhook
    created with a secret and disabled. Returns the task id."""
    project = create_project(services.store, CreateProject(name="P", slug="p"), ME).data["id"]
    task = create_task(services.store, CreateTask(title="t", project_id=project), ME).data["id"]
    written = execute_task(services.store, task, ExecuteTask(), ME)
    assert services.runner.wait_for(written.position, 30.0)
    claim = services.scheduler.claim("w1")
    assert claim is not None
    report(services.store, claim, {"type": "question", "question": "?"}, None)
    finish(services.store, claim, "failed", {"exit_code": 1})
    hook = Webhook(
        team_id=ME.team_id,
        url="https://hooks.example.com/in",
        events=["*"],
        description="",
        enabled=True,
        secret=SECRET,
        starts_after=0,
        actor=ME.id,
        request_id="r",
    )
    hook.disable("410 Gone", datetime.now(UTC), "webhooks")
    services.store.commit(hook)
    return task


def test_public_events_carry_their_team_and_leave_secrets_and_claims_behind(services):
    task = world(services)
    events, last = public_events(services.ledger, 0, 1_000)
    assert last == services.ledger.max_position()
    types = [e.type for e in events]
    assert types[:3] == ["project.created", "task.created", "task.execution_requested"]
    assert "question.asked" in types and "question.withdrawn" in types
    assert "task.execution_finished" in types and "webhook.disabled" in types
    assert "webhook.created" not in types  # it carries the signing secret
    assert all(e.team_id == ME.team_id for e in events)
    assert [e.position for e in events] == sorted(e.position for e in events)
    assert not any(SECRET in str(e.data) for e in events)
    [disabled] = [e for e in events if e.type == "webhook.disabled"]
    assert set(disabled.data) == {"reason", "at"}
    finished = next(e for e in events if e.type == "task.execution_finished")
    assert finished.aggregate_id == task and "task.failed" in seed_types(finished)
    assert subject(finished) == "taskwarden.team_one.task.execution_finished"


def test_a_reader_starting_mid_log_places_each_event_from_the_event_alone(services):
    world(services)
    everything, _ = public_events(services.ledger, 0, 1_000)
    middle = everything[len(everything) // 2].position
    later, _ = public_events(services.ledger, middle, 1_000)  # has seen no creating event
    assert [(e.position, e.type, e.team_id) for e in later] == [
        (e.position, e.type, e.team_id) for e in everything if e.position > middle
    ]


def test_every_stored_event_says_where_it_belongs(services):
    task = world(services)
    notifications = services.ledger.recorder.select_notifications(0, 10_000)
    stored = [services.ledger.mapper.to_domain_event(n) for n in notifications]
    assert len(stored) > 10  # claims, credentials, queue, webhook and items among them
    assert all(getattr(e, "team_id", None) == ME.team_id for e in stored)
    of_task = [e for e in stored if "task_id" in e.PLACE or str(e.originator_id) == task]
    assert len(of_task) > 5
    for event in of_task:
        assert event.project_id is not None
        assert str(event.originator_id) == task or event.task_id == task
    events, _ = public_events(services.ledger, 0, 1_000)
    placed = [e for e in events if e.aggregate in ("task", "question", "output")]
    assert placed and all(e.task_id == task and e.project_id for e in placed)
    [withdrawn] = [e for e in events if e.type == "question.withdrawn"]
    assert withdrawn.task_id == task
