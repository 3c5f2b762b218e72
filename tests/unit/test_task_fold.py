"""The task and its listing row come from one fold of the task's events (domain/task_state.py).

The listing row once had rules of its own and drifted: after a cancel was requested during a run
that then went to review and was rejected, the task said ``cancel_requested: false`` and the
listing said ``true``. These tests fold the aggregate's events through the projection code path
(``TaskProjection`` and the batch the runner uses) and compare the row with ``task_data``.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import msgspec

from application.representations import task_data
from domain.execution_policy import ExecutionPolicy
from domain.task import Task, TaskState, evolve
from domain.task_state import STATE_FIELDS, created, stamped
from domain.usage import Usage
from domain.values import Actor, Priority, TaskStatus
from projections.batch import evolve_batch
from projections.rows import TaskRow
from projections.tasks import API_FIELDS, ROW_UNSEEN, TaskProjection, row_of, state_of

ME = Actor(id="user-1", team_id="team-1", request_id="req-1")
WORKER = Actor(id="worker-1", team_id="team-1", request_id="req-2")
REVIEWER = Actor(id="user-2", team_id="team-1", request_id="req-3")
AT = datetime(2030, 1, 1, 11, 0, tzinfo=UTC)  # the moment a handler gives a stamped change


def new_task() -> Task:
    return Task(
        team_id="team-1",
        project_id="project-1",
        title="Fix the login bug",
        description="It fails on empty passwords",
        priority=int(Priority.NORMAL),
        tags=["bug"],
        metadata={"source": "test"},
        assigned_to=None,
        estimated_duration=None,
        slug=None,
        dependencies=[],
        repository_url="https://example.com/repo.git",
        base_branch="main",
        ticket_id=None,
        ticket_summary=None,
        test_command="pytest",
        actor=ME.id,
        request_id=ME.request_id,
    )


def cancelled_during_a_run_then_rejected() -> Task:
    """Queue, start, ask to cancel, the agent finishes and its run requires approval (so review is
    requested), then the reviewer rejects the work."""
    task = new_task()
    execution_id = task.request_execution(ExecutionPolicy(require_approval=True), None, [], ME)
    task.start_execution(execution_id, "worker-1", WORKER, at=AT)
    assert task.cancel("stop", ME, at=AT) is False
    task.request_review("done", WORKER, result={"branch": "fix"})
    task.reject("tests fail", REVIEWER)
    return task


def api_fields(row: TaskRow) -> dict[str, Any]:
    data = msgspec.structs.asdict(row)
    return {name: data[name] for name in API_FIELDS}


def represented(task: Task) -> dict[str, Any]:
    data = task_data(task)
    return {name: data[name] for name in API_FIELDS}


def test_after_a_requested_cancel_and_a_rejection_the_row_and_the_task_agree() -> None:
    task = cancelled_during_a_run_then_rejected()
    row: TaskRow | None = None
    for position, event in enumerate(task.collect_events(), start=1):
        row = TaskProjection().evolve(row, event, position)
    assert row is not None
    assert task.cancel_requested is False
    assert row.cancel_requested is False
    assert (row.status, row.attempt, row.result) == (TaskStatus.QUEUED.value, 2, None)
    assert api_fields(row) == represented(task)
    assert (row.team_id, row.position) == (task.team_id, task.version)


def test_the_runners_batch_builds_the_same_row_from_the_events_at_once_or_apart() -> None:
    task = cancelled_during_a_run_then_rejected()
    events = list(enumerate(task.collect_events(), start=1))
    whole = evolve_batch(events, {}, {}).tasks[str(task.id)]
    first = evolve_batch(events[:3], {}, {}).tasks[str(task.id)]
    assert first is not None
    apart = evolve_batch(events[3:], {str(task.id): first}, {}).tasks[str(task.id)]
    assert whole is not None and apart == whole
    assert api_fields(whole) == represented(task)


def test_events_the_listing_used_to_skip_change_the_row_as_they_change_the_task() -> None:
    """Progress and expiry in the queue were left out of the listing row before."""
    task = new_task()
    execution_id = task.request_execution(ExecutionPolicy(), None, [], ME)
    task.expire_in_queue(execution_id, WORKER, at=AT)
    retry = task.request_execution(ExecutionPolicy(), None, [], ME, retry=True)
    task.start_execution(retry, "worker-1", WORKER, at=AT)
    task.report_progress(retry, 40, "halfway", WORKER)
    row: TaskRow | None = None
    for position, event in enumerate(task.collect_events(), start=1):
        row = TaskProjection().evolve(row, event, position)
        if isinstance(event, Task.ExpiredInQueue):
            assert row is not None and row.status == TaskStatus.TIMED_OUT.value
    assert row is not None and row.progress_percentage == 40
    assert api_fields(row) == represented(task)


def test_a_deleted_task_has_no_row_but_still_answers_for_itself() -> None:
    task = new_task()
    task.delete("duplicate", ME)
    row: TaskRow | None = None
    for position, event in enumerate(task.collect_events(), start=1):
        row = TaskProjection().evolve(row, event, position)
    assert row is None
    assert task.deleted and task_data(task)["id"] == str(task.id)


def test_a_usage_report_changes_nothing_the_row_shows_but_its_version_and_time() -> None:
    """The projection stamps a usage event on the row's state instead of folding its totals
    (``projections/tasks.py:ROW_UNSEEN``): that holds while the fold of such an event changes
    nothing else the row shows."""
    task = new_task()
    execution_id = task.request_execution(ExecutionPolicy(), None, [], ME)
    task.start_execution(execution_id, "worker-1", WORKER, at=AT)
    for n in range(3):
        usage = Usage(model=f"model-{n}", provider="p", input_tokens=10 * n, cost_usd=0.25 * n)
        task.record_usage(execution_id, usage, WORKER)
    events = list(enumerate(task.collect_events(), start=1))
    assert all(type(e) in ROW_UNSEEN for _, e in events[-3:])
    folded: TaskState | None = None
    for position, event in events:
        before, folded = folded, evolve(folded, event)
        if type(event) in ROW_UNSEEN:
            assert before is not None
            changed = {
                f.name
                for f in dataclasses.fields(TaskState)
                if getattr(folded, f.name) != getattr(before, f.name)
            }
            assert changed <= {"usage", "version", "updated_at"}
            assert row_of(folded, position) == row_of(stamped(before, event), position)
    whole = evolve_batch(events, {}, {}).tasks[str(task.id)]
    first = evolve_batch(events[:2], {}, {}).tasks[str(task.id)]
    assert first is not None
    apart = evolve_batch(events[2:], {str(task.id): first}, {}).tasks[str(task.id)]
    assert whole is not None and apart == whole
    assert api_fields(whole) == represented(task)
    assert (whole.version, whole.position) == (task.version, len(events))


def test_a_created_state_is_the_one_the_constructor_makes() -> None:
    """``created`` builds its state without the dataclass constructor (``new_state``): every
    field is there, defaults and fresh factory values included, as ``TaskState(...)`` sets it."""
    event = new_task().collect_events()[0]
    state = created(event)
    assert set(vars(state)) == STATE_FIELDS
    given = {name: value for name, value in vars(state).items() if name in REQUIRED}
    assert state == TaskState(**given)
    other = created(event)
    assert other.usage is not state.usage and other.phases is not state.phases
    assert other.execution_options is not state.execution_options


def test_a_state_read_back_from_its_row_is_the_one_the_constructor_makes() -> None:
    task = cancelled_during_a_run_then_rejected()
    row = row_of(task.state, 9)
    state = state_of(row)
    assert set(vars(state)) == STATE_FIELDS
    assert state == TaskState(**{name: getattr(state, name) for name in STATE_FIELDS})
    assert row_of(state, 9) == row


REQUIRED = frozenset(
    f.name
    for f in dataclasses.fields(TaskState)
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
)
