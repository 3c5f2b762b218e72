"""The scheduler and the sweeper against real stores (the events in memory and the views in
SQLite; the claims' race on SQLite and on Postgres): claims race, caps, bands, ageing, backoff,
time-to-live, expired leases and overdue questions, on a clock the test moves (tests/clock.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import pytest

from application import sweeps
from application.commands import (
    CreateProject,
    CreateTask,
    ExecuteTask,
    ExecutionOptions,
    ResourceLimits,
    Targeted,
    UpdateProject,
)
from application.execution_reports import finish, heartbeat, report
from application.projects import create_project, update_project
from application.scheduler import Claim, Scheduler
from application.tasks import create_task
from domain.hitl import HitlItem
from domain.queue import QueueControl, queue_control_id
from domain.task import Task
from domain.values import Actor
from infrastructure.settings import Settings
from interfaces.services import Services, build, migrate
from tests.builders import execute_task
from tests.clock import ManualClock
from tests.stores import on_databases

ME = Actor(id="user:me", team_id="team-1", request_id="r")


@pytest.fixture
def services(tmp_path: Path, event_store: dict[str, Any]) -> Iterator[Services]:
    settings = Settings(data_dir=tmp_path / "data", workers=0, **event_store)
    migrate(settings)
    built = build(settings, clock=ManualClock())
    yield built
    built.close()


def clock_of(services: Services) -> ManualClock:
    return cast(ManualClock, services.store.clock)


def scheduler(services: Services, aging: float = 60.0) -> Scheduler:
    return Scheduler(
        services.store,
        services.read_model,
        aging_seconds=aging,
        lease_seconds=30.0,
        settle=lambda p: services.runner.wait_for(p, 30.0),
    )


def project(services: Services, **limits: Any) -> str:
    cmd = CreateProject(name="P", resource_limits=ResourceLimits(**limits))
    return create_project(services.store, cmd, ME).data["id"]


def queued(services: Services, project_id: str, priority: str = "normal", **options: Any) -> str:
    task = create_task(services.store, CreateTask(title="t", project_id=project_id), ME).data
    written = execute_task(
        services.store,
        task["id"],
        ExecuteTask(priority=priority, options=ExecutionOptions(**options)),
        ME,
    )
    assert services.runner.wait_for(written.position, 30.0)
    caught_up(services, task["id"])
    return task["id"]


def caught_up(services: Services, task_id: str) -> None:
    """The test's clock stands still, but a request's queue time is its stored event's own
    timestamp (eventsourcing stamps it from the system's clock): the clock is moved up to it,
    so that the request is not in the clock's future."""
    [row] = [r for r in services.read_model.in_flight(ME.team_id) if r.task_id == task_id]
    clock = clock_of(services)
    if clock.time() < row.requested_at:
        clock.set(datetime.fromtimestamp(row.requested_at, UTC))


def settle(services: Services) -> None:
    assert services.runner.wait_for(services.store.max_position(), 30.0)


@on_databases
def test_many_workers_racing_for_one_execution_start_it_exactly_once(services):
    task_id = queued(services, project(services))
    schedulers = [scheduler(services) for _ in range(4)]  # as if four processes
    claims: list[Claim | None] = []
    start = threading.Barrier(8)

    def race(s: Scheduler, n: int) -> None:
        start.wait()
        claims.append(s.claim(f"w{n}"))

    threads = [threading.Thread(target=race, args=(schedulers[n % 4], n)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [c for c in claims if c is not None]
    assert len(won) == 1 and won[0].task_id == task_id
    starts = [
        e
        for e in services.store.events_of(UUID(task_id), ME.team_id)
        if type(e).__name__ == "ExecutionStarted"
    ]
    assert len(starts) == 1 and starts[0].worker_id == won[0].worker_id


def test_claims_follow_priority_then_age(services):
    p = project(services)
    low, normal, urgent = (queued(services, p, pr) for pr in ("low", "normal", "urgent"))
    s = scheduler(services)
    assert [s.claim("w").task_id for _ in range(3)] == [urgent, normal, low]
    assert s.claim("w") is None


def test_waiting_ages_a_low_priority_request_past_newer_urgent_ones(services):
    p = project(services)
    low = queued(services, p, "low")
    urgent = queued(services, p, "urgent")  # queued a little later
    rows = {r.task_id: r for r in services.read_model.queued(10)}
    gap = rows[urgent].requested_at - rows[low].requested_at
    assert gap > 0
    # ageing one level per tenth of the recorded gap: low has waited 10 levels longer than urgent
    assert scheduler(services, aging=gap / 10).claim("w").task_id == low
    assert scheduler(services).claim("w").task_id == urgent


def test_without_enough_waiting_urgent_goes_first(services):
    p = project(services)
    queued(services, p, "low")
    urgent = queued(services, p, "urgent")
    assert scheduler(services).claim("w").task_id == urgent


def test_a_project_runs_at_most_its_max_concurrent_tasks(services):
    capped, free = project(services, max_concurrent_tasks=1), project(services)
    first, second = queued(services, capped), queued(services, capped)
    other = queued(services, free)
    s = scheduler(services)
    claimed = [s.claim("w1"), s.claim("w2"), s.claim("w3")]
    assert [c.task_id if c else None for c in claimed] == [first, other, None]
    finish(services.store, claimed[0], "completed", {})
    settle(services)
    assert s.claim("w4").task_id == second


def test_a_band_paused_after_a_claim_kept_its_queue_control_is_not_claimed(services):
    """A claim decides on this process's copy of the team's queue control (none: never paused)
    and relies on it unchanged at its commit: a pause written since refuses the commit, and
    the claim decides again on what is stored now."""
    p = project(services)
    first, second = queued(services, p), queued(services, p)
    s = scheduler(services)
    assert s.claim("w1").task_id == first  # keeps the copy: no control yet
    control = QueueControl(team_id=ME.team_id)
    control.pause("normal_priority", "maintenance", ME.id)
    services.store.commit(control)
    assert s.claim("w2") is None
    assert services.store.get(Task, UUID(second)).status == "queued"
    control.resume("normal_priority", ME.id)
    services.store.commit(control)
    assert s.claim("w3").task_id == second


def test_a_cap_lowered_after_a_claim_kept_its_project_holds_back_the_next_claim(services):
    p = project(services, max_concurrent_tasks=2)
    first, second = queued(services, p), queued(services, p)
    s = scheduler(services)
    assert s.claim("w1").task_id == first  # keeps the project: a cap of 2, one running
    lowered = UpdateProject(resource_limits=ResourceLimits(max_concurrent_tasks=1))
    update_project(services.store, Targeted(target=p, command=lowered), ME)
    settle(services)
    assert s.claim("w2") is None
    assert services.store.get(Task, UUID(second)).status == "queued"


def test_a_cap_raised_after_a_claim_kept_its_project_lets_the_next_claim_through(services):
    """A copy only ever lets work through: a refusal is decided again on a fresh read."""
    p = project(services, max_concurrent_tasks=1)
    first, second = queued(services, p), queued(services, p)
    s = scheduler(services)
    assert s.claim("w1").task_id == first
    assert s.claim("w2") is None  # the cap of 1 is reached
    raised = UpdateProject(resource_limits=ResourceLimits(max_concurrent_tasks=2))
    update_project(services.store, Targeted(target=p, command=raised), ME)
    settle(services)
    assert s.claim("w3").task_id == second


def test_a_paused_band_is_skipped_until_resumed(services):
    p = project(services)
    high, low = queued(services, p, "high"), queued(services, p, "low")
    control = QueueControl(team_id=ME.team_id)
    assert control.id == queue_control_id(ME.team_id)
    control.pause("high_priority", "maintenance", ME.id)
    services.store.commit(control)
    s = scheduler(services)
    assert s.claim("w").task_id == low
    assert s.claim("w") is None
    control.resume("high_priority", ME.id)
    services.store.commit(control)
    assert s.claim("w").task_id == high


def test_a_retry_is_not_started_before_its_backoff(services):
    task_id = queued(services, project(services), retry_attempts=1, retry_backoff=60)
    s, clock = scheduler(services), clock_of(services)
    claim = s.claim("w")
    outcome = finish(services.store, claim, "failed", {"exit_code": 1})
    assert outcome["retry_scheduled"] is True and outcome["status"] == "queued"
    settle(services)
    clock.advance(29)
    assert s.claim("w") is None  # backing off (30 to 60 s)
    clock.advance(32)
    assert s.claim("w").task_id == task_id


def test_the_sweeper_times_out_a_request_once_its_queue_ttl_has_passed_on_the_clock(services):
    task_id = queued(services, project(services), queue_ttl=60)
    clock = clock_of(services)
    [row] = services.read_model.in_flight(ME.team_id)
    clock.set(datetime.fromtimestamp(row.requested_at + 59, UTC))
    assert sweeps.expire_queued(services.store, services.read_model) == 0
    clock.advance(2)
    assert sweeps.expire_queued(services.store, services.read_model) == 1
    task = services.store.get(Task, UUID(task_id))
    assert task.status == "timed_out" and task.last_reason == "queue time-to-live expired"
    assert task.completed_at == clock.now()  # stamped with the sweep's time
    assert sweeps.expire_queued(services.store, services.read_model) == 0  # once


def test_an_expired_lease_is_recovered_and_retried_and_the_old_worker_is_told(services):
    task_id = queued(services, project(services), retry_attempts=1, retry_backoff=0)
    clock = clock_of(services)
    claim = scheduler(services).claim("dead-worker")
    question = report(services.store, claim, {"type": "question", "question": "?"}, None)
    settle(services)
    assert claim.lease_until == pytest.approx(clock.time() + 30.0)
    clock.advance(29.0)
    assert sweeps.recover_leases(services.store, services.read_model) == 0
    clock.advance(2.0)
    assert sweeps.recover_leases(services.store, services.read_model) == 1
    task = services.store.get(Task, UUID(task_id))
    assert task.status == "queued" and task.attempt == 2 and task.worker_id is None
    assert services.store.get(HitlItem, UUID(question)).status == "withdrawn"
    beat = heartbeat(services.store, claim, question, 30.0)
    assert beat.lost  # the dead worker, if it comes back, stops without reporting


def test_an_overdue_question_is_answered_with_its_default_and_the_agent_resumes(services):
    task_id = queued(services, project(services))
    clock = clock_of(services)
    claim = scheduler(services).claim("w")
    message = {"type": "question", "question": "Which?", "default": "the first"}
    question = report(services.store, claim, message, 10.0)
    settle(services)
    clock.advance(9)
    assert sweeps.decide_overdue(services.store, services.read_model) == 0
    clock.advance(2)
    assert sweeps.decide_overdue(services.store, services.read_model) == 1
    task = services.store.get(Task, UUID(task_id))
    assert task.status == "running" and task.waiting_on is None
    beat = heartbeat(services.store, claim, question, 30.0)
    assert beat.reply == {"type": "answer", "question_id": question, "response": "the first"}


def test_an_overdue_checkpoint_is_rejected_by_default(services):
    queued(services, project(services))
    claim = scheduler(services).claim("w")
    message = {"type": "checkpoint", "action": "deploy"}
    checkpoint = report(services.store, claim, message, 1.0)
    settle(services)
    clock_of(services).advance(2)
    assert sweeps.decide_overdue(services.store, services.read_model) == 1
    beat = heartbeat(services.store, claim, checkpoint, 30.0)
    assert beat.reply["approved"] is False and beat.reply["reason"] == "timed out"


def test_a_heartbeat_renews_the_lease_only_once_half_of_it_is_spent(services):
    task_id = queued(services, project(services))
    clock = clock_of(services)
    claim = scheduler(services).claim("w")
    version = services.store.get(Task, UUID(task_id)).version
    clock.advance(10)  # a third spent
    heartbeat(services.store, claim, None, 30.0)
    assert services.store.get(Task, UUID(task_id)).version == version
    clock.advance(10)
    heartbeat(services.store, claim, None, 30.0)
    task = services.store.get(Task, UUID(task_id))
    assert task.version == version + 1
    renewed = clock.now() + timedelta(seconds=30)
    assert abs((task.lease_until - renewed).total_seconds()) < 0.001
