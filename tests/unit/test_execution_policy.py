"""Given a running task, when its execution ends, then the task decides with the options its
execution was requested with: finished work waits for review or completes, and a failure is
retried after a backoff while retries are left (domain/task.py, domain/execution_policy.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain.execution_policy import MAX_BACKOFF_SECONDS, ExecutionPolicy
from domain.task import Task
from domain.values import Actor, TaskStatus
from tests.builders import a_task

ME = Actor(id="user-1", team_id="team-1", request_id="req-1")
RUNNER = Actor(id="worker-1", team_id="team-1", request_id="req-9")
SCHEDULER = Actor(id="scheduler", team_id="team-1", request_id="req-0")
AT = datetime(2030, 1, 1, 11, 0, tzinfo=UTC)  # the moment a handler gives
NOW = AT.timestamp()  # the same moment in epoch seconds, as a policy records it


def running(policy: ExecutionPolicy) -> Task:
    task = a_task(actor=ME.id, request_id=ME.request_id)
    task.request_execution(policy, None, [], ME)
    task.start_execution(str(task.execution_id), "worker-1", RUNNER, at=AT)
    task.collect_events()
    return task


def ended(policy: ExecutionPolicy, outcome: TaskStatus) -> Task:
    task = running(policy)
    task.end_execution(outcome, {"exit_code": 0, "summary": "done"}, RUNNER, at=AT)
    task.collect_events()
    return task


def names(task: Task) -> list[str]:
    return [type(e).__name__ for e in task.collect_events()]


def test_completed_work_waits_for_a_person_when_its_options_ask_for_a_review() -> None:
    task = running(ExecutionPolicy(require_approval=True))
    task.end_execution(TaskStatus.COMPLETED, {"exit_code": 0, "summary": "done"}, RUNNER, at=AT)
    assert names(task) == ["ReviewRequested"]
    assert task.status == TaskStatus.AWAITING_APPROVAL.value and task.worker_id is None
    assert task.result == {"exit_code": 0, "summary": "done"}


@pytest.mark.parametrize("require_approval", [False, True])
@pytest.mark.parametrize("outcome", [TaskStatus.FAILED, TaskStatus.TIMED_OUT, TaskStatus.CANCELLED])
def test_work_that_did_not_complete_ends_whatever_the_review_option(
    outcome: TaskStatus, require_approval: bool
) -> None:
    task = running(ExecutionPolicy(require_approval=require_approval))
    task.end_execution(outcome, {"exit_code": 1}, RUNNER, at=AT)
    assert names(task) == ["ExecutionFinished"] and task.status == outcome.value


def test_completed_work_completes_when_no_review_is_asked() -> None:
    task = running(ExecutionPolicy())
    task.end_execution(TaskStatus.COMPLETED, {"exit_code": 0}, RUNNER, at=AT)
    assert names(task) == ["ExecutionFinished"]
    assert task.status == TaskStatus.COMPLETED.value


@pytest.mark.parametrize("outcome", [TaskStatus.FAILED, TaskStatus.TIMED_OUT])
def test_a_failure_with_retries_left_queues_the_next_attempt_after_its_backoff(
    outcome: TaskStatus,
) -> None:
    task = ended(ExecutionPolicy(retry_attempts=2, retry_backoff=10, agent="codex"), outcome)
    assert task.retry_if_allowed(SCHEDULER, at=AT)
    (requested,) = task.collect_events()
    assert type(requested).__name__ == "ExecutionRequested" and requested.retry
    assert requested.actor == SCHEDULER.id
    assert (task.status, task.attempt) == (TaskStatus.QUEUED.value, 2)
    policy = task.policy
    assert (policy.retry_attempts, policy.retry_backoff, policy.agent) == (1, 10, "codex")
    assert policy.not_before is not None and NOW + 5 <= policy.not_before <= NOW + 10


def test_each_retry_waits_twice_as_long_as_the_one_before_at_most_five_minutes() -> None:
    task = ended(ExecutionPolicy(retry_attempts=9, retry_backoff=100), TaskStatus.FAILED)
    ceilings = []
    for _ in range(3):
        assert task.retry_if_allowed(SCHEDULER, at=AT)
        ceilings.append((task.attempt, (task.policy.not_before or 0) - NOW))
        task.start_execution(str(task.execution_id), "worker-1", RUNNER, at=AT)
        task.end_execution(TaskStatus.FAILED, {"exit_code": 1}, RUNNER, at=AT)
    (a2, d2), (a3, d3), (a4, d4) = ceilings
    assert (a2, a3, a4) == (2, 3, 4)
    assert 50 <= d2 <= 100 and 100 <= d3 <= 200 and MAX_BACKOFF_SECONDS / 2 <= d4
    assert d4 <= MAX_BACKOFF_SECONDS


@pytest.mark.parametrize(
    ("policy", "outcome"),
    [
        (ExecutionPolicy(retry_attempts=3), TaskStatus.COMPLETED),
        (ExecutionPolicy(retry_attempts=3), TaskStatus.CANCELLED),
        (ExecutionPolicy(retry_attempts=3, require_approval=True), TaskStatus.COMPLETED),
        (ExecutionPolicy(retry_attempts=0), TaskStatus.FAILED),
    ],
    ids=["completed", "cancelled", "in review", "no retries left"],
)
def test_nothing_is_retried_after_success_cancel_or_when_no_retry_is_left(
    policy: ExecutionPolicy, outcome: TaskStatus
) -> None:
    task = ended(policy, outcome)
    status = task.status
    assert not task.retry_if_allowed(SCHEDULER, at=AT)
    assert names(task) == [] and task.status == status


def test_the_options_an_event_records_read_back_the_same() -> None:
    policy = ExecutionPolicy(timeout=60, retry_attempts=1, queue_ttl=30, not_before=NOW)
    assert ExecutionPolicy.of(policy.recorded()) == policy
    assert "not_before" not in ExecutionPolicy(timeout=60).recorded()


def test_options_recorded_without_some_fields_take_their_defaults() -> None:
    recorded: dict[str, Any] = {"timeout": 60, "retry_attempts": None, "unknown": 1}
    assert ExecutionPolicy.of(recorded) == ExecutionPolicy(timeout=60)
