"""The task facts fold (projections/task_facts.py): given a task's events and those of the
questions and checkpoints it waits on, with the times the event store stamped, then its row."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.hitl import Checkpoint, Experience, HitlItem, Question
from domain.task import Task
from projections.task_facts import TaskFact, evolve_facts, failure_reason

T0 = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
TASK = uuid4()
PLACE = {"team_id": "team-a", "project_id": "project-a"}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event(cls: type, seconds: float, originator: Any = TASK, **fields: Any) -> Any:
    """An event of ``cls`` stamped ``seconds`` after T0; fields it does not name are None."""
    given = {"originator_id": originator, "originator_version": 1, "timestamp": at(seconds)}
    given |= {"actor": "user:ann", "request_id": "r", **PLACE, **fields}
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    return cls(**{name: given.get(name) for name in names})


def created(seconds: float = 0, **fields: Any) -> Any:
    base = {"metadata": {}, "tags": [], "dependencies": [], "title": "t", "priority": 2}
    return event(Task.Created, seconds, **(base | fields))


def requested(seconds: float, **options: Any) -> Any:
    return event(Task.ExecutionRequested, seconds, execution_id="e", options=options)


def started(seconds: float) -> Any:
    return event(Task.ExecutionStarted, seconds, execution_id="e", at=at(seconds))


def finished(seconds: float, outcome: str, **result: Any) -> Any:
    return event(Task.ExecutionFinished, seconds, outcome=outcome, result=result, at=at(seconds))


def asked(seconds: float, item: UUID, cls: type = Question.Asked) -> Any:
    return event(cls, seconds, originator=item, task_id=str(TASK))


def closed(seconds: float, item: UUID, cls: type = Question.Answered) -> Any:
    return event(cls, seconds, originator=item, task_id=str(TASK))


def fold(*events: Any, loaded: dict[str, TaskFact] | None = None) -> TaskFact | None:
    return evolve_facts(list(enumerate(events, 1)), loaded or {})[str(TASK)]


def test_a_task_picked_up_that_asked_a_question_answered_later_and_completed():
    question = uuid4()
    fact = fold(
        created(0, estimated_duration=600.0, assigned_to="user:bob"),
        requested(5),
        started(30),
        asked(40, question),
        closed(160, question),
        finished(330, "completed", exit_code=0),
    )
    assert fact is not None
    assert fact.created_day == "2026-11-30" and fact.created_by == "user:ann"
    assert fact.assigned_to == "user:bob" and fact.agent == "default"
    assert fact.pickup_seconds == 30.0 and fact.first_started_at == "2026-11-30T23:00:30.000000Z"
    assert fact.waits == 1 and fact.wait_seconds == 120.0 and fact.open_waits == {}
    assert fact.outcome == "completed" and fact.duration_seconds == 300.0
    assert fact.finished_day == "2026-11-30" and fact.executions == 1 and fact.failures == 0


def test_a_question_still_open_is_an_open_wait_not_yet_counted():
    question = uuid4()
    fact = fold(created(), requested(1), started(2), asked(3, question))
    assert fact is not None
    assert fact.open_waits == {str(question): "2026-11-30T23:00:03.000000Z"}
    assert fact.waits == 0 and fact.wait_seconds == 0.0


def test_a_failed_execution_retried_then_completed_counts_both_executions_and_the_failure():
    fact = fold(
        created(),
        requested(1, agent="codex"),
        started(2),
        finished(10, "failed", error="tests failed", exit_code=1),
        requested(11),
        started(3600),
        finished(3700, "completed"),
    )
    assert fact is not None
    assert fact.executions == 2 and fact.failures == 1 and fact.pickup_seconds == 2.0
    assert fact.last_failure_reason == "tests failed"
    assert fact.outcome == "completed" and fact.duration_seconds == 100.0
    assert fact.finished_day == "2026-12-01"  # the last finish, its UTC day
    assert fact.agent == "default"  # the retry's request named no agent, nor does the task


def test_the_agent_is_the_requests_else_the_tasks_metadata_else_default():
    assert (fact := fold(created(metadata={"agent": "claude"}))) and fact.agent == "claude"
    fact = fold(created(metadata={"agent": "claude"}), requested(1, agent="codex"))
    assert fact is not None and fact.agent == "codex"
    fact = fold(created(metadata={"agent": "claude"}), requested(1))
    assert fact is not None and fact.agent == "claude"
    assert (fact := fold(created())) and fact.agent == "default"


def test_a_checkpoint_and_a_review_of_finished_work_are_waits_on_people():
    checkpoint = uuid4()
    fact = fold(
        created(),
        requested(1),
        started(10),
        asked(20, checkpoint, Checkpoint.Requested),
        closed(50, checkpoint, Checkpoint.Rejected),
        event(Task.ReviewRequested, 60, summary="done"),
        event(Task.WorkApproved, 100, at=at(100)),
    )
    assert fact is not None
    assert fact.waits == 2 and fact.wait_seconds == 70.0 and fact.open_waits == {}
    assert fact.outcome == "completed" and fact.duration_seconds == 90.0  # start to approval


def test_a_rejected_review_ends_the_wait_and_reopens_the_task():
    fact = fold(
        created(),
        requested(1),
        started(2),
        event(Task.ReviewRequested, 10, summary="done"),
        event(Task.WorkRejected, 25, reason="no", execution_id="e2", attempt=2),
    )
    assert fact is not None
    assert fact.waits == 1 and fact.wait_seconds == 15.0 and fact.outcome is None


def test_a_withdrawn_question_ends_its_wait_and_an_experience_is_no_wait():
    question, experience = uuid4(), uuid4()
    fact = fold(
        created(),
        requested(1),
        started(2),
        asked(3, experience, Experience.Proposed),
        asked(4, question),
        closed(9, question, HitlItem.Withdrawn),
        closed(10, experience, Experience.Approved),
        finished(11, "cancelled"),
    )
    assert fact is not None
    assert fact.waits == 1 and fact.wait_seconds == 5.0 and fact.open_waits == {}
    assert fact.outcome == "cancelled" and fact.duration_seconds is None and fact.failures == 0


def test_a_task_completed_by_hand_has_no_execution_duration():
    fact = fold(created(), event(Task.StatusChanged, 5, old="pending", new="completed", at=at(5)))
    assert fact is not None and fact.outcome == "completed" and fact.duration_seconds is None
    back = fold(event(Task.StatusChanged, 6, old="completed", new="pending", at=at(6)),
                loaded={str(TASK): fact})  # fmt: skip
    assert back is not None and back.outcome is None and back.finished_at is None


def test_a_request_that_expired_in_the_queue_is_a_failure_without_an_execution():
    expired = event(Task.ExpiredInQueue, 60, execution_id="e", at=at(60))
    fact = fold(created(), requested(1), expired)
    assert fact is not None and fact.outcome == "timed_out" and fact.executions == 0
    assert fact.failures == 1 and fact.last_failure_reason == "queue time-to-live expired"
    assert fact.pickup_seconds is None


def test_the_estimate_and_the_assignee_follow_their_changes():
    fact = fold(
        created(estimated_duration=60.0),
        event(Task.Updated, 1, changes={"estimated_duration": 120.0}),
        event(Task.Assigned, 2, assigned_to="user:cy"),
    )
    assert fact is not None and fact.estimated_duration == 120.0 and fact.assigned_to == "user:cy"


def test_a_deleted_task_has_no_row_and_later_events_of_a_task_without_one_are_passed_over():
    changes = evolve_facts(
        [(1, created()), (2, event(Task.Deleted, 1, reason=None)), (3, started(2))], {}
    )
    assert changes == {str(TASK): None}
    assert evolve_facts([(1, started(2))], {}) == {}


def test_folding_one_event_at_a_time_gives_the_rows_of_folding_them_at_once():
    question = uuid4()
    events = [
        created(0, estimated_duration=10.0),
        requested(1),
        started(2.5),
        asked(3.25, question),
        closed(7.125, question),
        finished(9.000001, "failed", exit_code=2),
        requested(10),
        started(11),
        finished(12.5, "completed"),
    ]
    at_once = evolve_facts(list(enumerate(events, 1)), {})
    rows: dict[str, TaskFact] = {}
    for position, e in enumerate(events, 1):
        for key, fact in evolve_facts([(position, e)], dict(rows)).items():
            assert fact is not None
            rows[key] = fact
    assert rows == at_once
    assert rows[str(TASK)].last_failure_reason == "exit code 2"


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        ({"error": "  boom  ", "exit_code": 1}, "boom"),
        ({"error": "", "exit_code": 3}, "exit code 3"),
        ({"exit_code": True}, "failed"),
        ({}, "failed"),
        ({"error": "x" * 500}, "x" * 200),
    ],
)
def test_the_failure_reason_is_the_error_else_the_exit_code_else_the_outcome(result, reason):
    assert failure_reason("failed", result) == reason
