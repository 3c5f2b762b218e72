"""Given a task, when a command, then events or an error (domain/task.py)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from domain.errors import (
    DeletedError,
    DependencyCycleError,
    DependencyNotMetError,
    DomainError,
    InvalidTransitionError,
    RuleViolationError,
    TaskAlreadyRunningError,
)
from domain.execution_policy import ExecutionPolicy
from domain.task import Task
from domain.values import MANUAL_TARGETS, TRANSITIONS, Actor, Priority, TaskStatus

ME = Actor(id="user-1", team_id="team-1", request_id="req-1")
REVIEWER = Actor(id="user-2", team_id="team-1", request_id="req-2")
AT = datetime(2030, 1, 1, 11, 0, tzinfo=UTC)  # the moment a handler gives a stamped change

Step = Callable[[Task], Any]


def new_task(**fields: Any) -> Task:
    defaults: dict[str, Any] = {
        "team_id": "team-1",
        "project_id": "project-1",
        "title": "Fix the login bug",
        "description": "It fails on empty passwords",
        "priority": int(Priority.NORMAL),
        "tags": ["bug"],
        "metadata": {"source": "test"},
        "assigned_to": None,
        "estimated_duration": None,
        "slug": None,
        "dependencies": [],
        "repository_url": "https://example.com/repo.git",
        "base_branch": "main",
        "ticket_id": None,
        "ticket_summary": None,
        "test_command": "pytest",
        "actor": ME.id,
        "request_id": ME.request_id,
    }
    return Task(**(defaults | fields))


# ---- steps that bring a task into a state ----------------------------------------------------


def queue(task: Task) -> None:
    task.request_execution(ExecutionPolicy(timeout=60), None, [], ME)


def start(task: Task) -> None:
    assert task.execution_id is not None
    task.start_execution(task.execution_id, "worker-1", ME, at=AT)


def review(task: Task) -> None:
    task.request_review("done, please look", ME)


def wait_on_checkpoint(task: Task) -> None:
    task.wait_for(str(task.execution_id), "checkpoint-1", "checkpoint", ME)


def finish(outcome: TaskStatus) -> Step:
    return lambda task: task.finish_execution(outcome, {"exit_code": 0}, ME, at=AT)


def cancel(task: Task) -> None:
    task.cancel("not needed", ME, at=AT)


def delete(task: Task) -> None:
    task.delete("obsolete", ME)


def approve(task: Task) -> None:
    task.approve("good", REVIEWER, at=AT)


# The shortest way into each status the domain can reach (needs_input has no command yet).
PATHS: dict[TaskStatus, list[Step]] = {
    TaskStatus.PENDING: [],
    TaskStatus.QUEUED: [queue],
    TaskStatus.RUNNING: [queue, start],
    TaskStatus.AWAITING_APPROVAL: [queue, start, review],
    TaskStatus.COMPLETED: [queue, start, finish(TaskStatus.COMPLETED)],
    TaskStatus.FAILED: [queue, start, finish(TaskStatus.FAILED)],
    TaskStatus.CANCELLED: [cancel],
    TaskStatus.TIMED_OUT: [queue, start, finish(TaskStatus.TIMED_OUT)],
}
ACTIVE_STATUSES = [TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.AWAITING_APPROVAL]
IDLE_STATUSES = [s for s in PATHS if s not in ACTIVE_STATUSES]
UNSUCCESSFUL = [TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMED_OUT]


def given(*steps: Step, **fields: Any) -> Task:
    """A task after ``steps``, with its events already saved (none pending)."""
    task = new_task(**fields)
    for step in steps:
        step(task)
    task.collect_events()
    return task


def given_status(status: TaskStatus, *more: Step) -> Task:
    """A task brought into ``status``, then moved on by ``more``."""
    task = given(*PATHS[status])
    assert task.status == status.value
    for step in more:
        step(task)
    task.collect_events()
    return task


def then_events(task: Task) -> list[str]:
    return [type(e).__name__ for e in task.collect_events()]


def then_refused(
    task: Task, error: type[DomainError], code: str, command: Callable[[], Any]
) -> DomainError:
    """The command raises ``error`` with ``code`` and changes nothing, pending events included."""
    before = copy.deepcopy(task.__dict__)
    with pytest.raises(error) as raised:
        command()
    assert raised.value.code == code
    assert task.__dict__ == before
    return raised.value


# ---- creation --------------------------------------------------------------------------------


def test_a_new_task_is_pending_and_remembers_who_created_it() -> None:
    task = new_task(tags=["a", "b"], dependencies=["d-1"])
    [created] = task.collect_events()
    assert type(created).__name__ == "Created"
    assert task.status == "pending"
    assert task.created_by == ME.id
    assert task.attempt == 0 and task.execution_id is None
    assert task.tags == ["a", "b"] and task.dependencies == ["d-1"]
    assert not task.deleted and not task.cancel_requested
    assert created.actor == ME.id and created.request_id == ME.request_id


# ---- plain edits -----------------------------------------------------------------------------


def test_an_update_records_only_the_fields_that_change() -> None:
    task = given()
    task.update({"title": "New title", "description": task.description}, ME)
    [updated] = task.collect_events()
    assert updated.changes == {"title": "New title"}
    assert task.title == "New title"


def test_an_update_that_changes_nothing_records_nothing() -> None:
    task = given()
    task.update({"title": task.title, "metadata": dict(task.metadata)}, ME)
    assert then_events(task) == []


@pytest.mark.parametrize("field", ["status", "priority", "tags", "deleted", "team_id", "slug"])
def test_an_update_refuses_a_field_that_has_its_own_command(field: str) -> None:
    task = given()
    error = then_refused(
        task, RuleViolationError, "VALIDATION_ERROR", lambda: task.update({field: "x"}, ME)
    )
    assert error.details["fields"] == [field]


def test_adding_tags_adds_only_new_ones_once_and_in_order() -> None:
    task = given(tags=["bug"])
    task.add_tags(["ui", "bug", "ui", "urgent"], ME)
    [added] = task.collect_events()
    assert added.tags == ["ui", "urgent"]
    assert task.tags == ["bug", "ui", "urgent"]


def test_adding_tags_the_task_has_records_nothing() -> None:
    task = given(tags=["bug"])
    task.add_tags(["bug"], ME)
    assert then_events(task) == []


def test_removing_tags_removes_only_those_present() -> None:
    task = given(tags=["bug", "ui"])
    task.remove_tags(["ui", "absent", "ui"], ME)
    [removed] = task.collect_events()
    assert removed.tags == ["ui"]
    assert task.tags == ["bug"]
    task.remove_tags(["absent"], ME)
    assert then_events(task) == []


def test_assigning_records_the_assignee_and_unassigning_clears_it() -> None:
    task = given()
    task.assign("agent-7", ME)
    task.assign("agent-7", ME)
    task.assign(None, ME)
    assert then_events(task) == ["Assigned", "Assigned"]
    assert task.assigned_to is None


def test_setting_the_priority_records_it_once() -> None:
    task = given()
    task.set_priority(Priority.URGENT, ME)
    task.set_priority(Priority.URGENT, ME)
    assert then_events(task) == ["PrioritySet"]
    assert task.priority == 4


def test_changing_the_slug_records_it_once() -> None:
    task = given()
    task.change_slug("login-bug", ME)
    task.change_slug("login-bug", ME)
    assert then_events(task) == ["SlugChanged"]
    assert task.slug == "login-bug"


# ---- deletion --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", IDLE_STATUSES, ids=lambda s: s.value)
def test_an_idle_task_can_be_deleted_with_a_reason(status: TaskStatus) -> None:
    task = given_status(status)
    task.delete("obsolete", ME)
    assert then_events(task) == ["Deleted"]
    assert task.deleted and task.deleted_reason == "obsolete"


@pytest.mark.parametrize("status", ACTIVE_STATUSES, ids=lambda s: s.value)
def test_deleting_an_active_task_is_refused(status: TaskStatus) -> None:
    task = given_status(status)
    then_refused(task, TaskAlreadyRunningError, "TASK_ALREADY_RUNNING", lambda: delete(task))


EDITS_OF_A_DELETED_TASK: dict[str, Step] = {
    "update": lambda t: t.update({"title": "x"}, ME),
    "add_tags": lambda t: t.add_tags(["x"], ME),
    "remove_tags": lambda t: t.remove_tags(["bug"], ME),
    "assign": lambda t: t.assign("someone", ME),
    "set_priority": lambda t: t.set_priority(Priority.HIGH, ME),
    "change_slug": lambda t: t.change_slug("x", ME),
    "delete": delete,
    "add_dependency": lambda t: t.add_dependency(new_task(), False, ME),
    "remove_dependency": lambda t: t.remove_dependency(uuid4(), ME),
    "change_status": lambda t: t.change_status(TaskStatus.COMPLETED, None, ME, at=AT),
    "request_execution": queue,
    "retry": lambda t: t.request_execution(ExecutionPolicy(), None, [], ME, retry=True),
    "cancel": cancel,
    "start_execution": lambda t: t.start_execution("e-1", "worker-1", ME, at=AT),
    "approve": approve,
    "reject": lambda t: t.reject("no", ME),
}


@pytest.mark.parametrize("command", EDITS_OF_A_DELETED_TASK.values(), ids=EDITS_OF_A_DELETED_TASK)
def test_a_deleted_task_refuses_every_command(command: Step) -> None:
    task = given(delete)
    then_refused(task, DeletedError, "RESOURCE_NOT_FOUND", lambda: command(task))


# ---- dependencies ----------------------------------------------------------------------------


def test_a_dependency_is_added_once() -> None:
    task, other = given(), new_task()
    task.add_dependency(other, False, ME)
    task.add_dependency(other, False, ME)
    [added] = task.collect_events()
    assert added.task_id == str(other.id)
    assert task.dependencies == [str(other.id)]


def test_a_task_cannot_depend_on_itself() -> None:
    task = given()
    then_refused(
        task,
        DependencyCycleError,
        "TASK_DEPENDENCY_CYCLE",
        lambda: task.add_dependency(task, False, ME),
    )


def test_a_dependency_that_already_reaches_the_task_is_a_cycle() -> None:
    task, other = given(), new_task()
    error = then_refused(
        task,
        DependencyCycleError,
        "TASK_DEPENDENCY_CYCLE",
        lambda: task.add_dependency(other, True, ME),
    )
    assert error.details == {"task_id": str(other.id)}


def test_removing_a_dependency_records_it_only_when_present() -> None:
    other = new_task()
    task = given(lambda t: t.add_dependency(other, False, ME))
    task.remove_dependency(uuid4(), ME)
    task.remove_dependency(other.id, ME)
    assert then_events(task) == ["DependencyRemoved"]
    assert task.dependencies == []


# ---- a person's direct status moves ----------------------------------------------------------

IDLE_MOVES = [
    (status, target)
    for status in IDLE_STATUSES
    for target in (TaskStatus.PENDING, TaskStatus.COMPLETED)
    if target != status
]


@pytest.mark.parametrize("status,target", IDLE_MOVES, ids=lambda s: s.value)
def test_a_direct_status_change_of_an_idle_task_follows_the_transition_table(
    status: TaskStatus, target: TaskStatus
) -> None:
    task = given_status(status)
    if target in TRANSITIONS[status]:
        task.change_status(target, "by hand", ME, at=AT)
        [changed] = task.collect_events()
        assert (changed.old, changed.new, changed.reason) == (status.value, target.value, "by hand")
        assert task.status == target.value
        assert (task.completed_at is not None) == (target != TaskStatus.PENDING)
    else:
        then_refused(
            task,
            InvalidTransitionError,
            "INVALID_STATUS_TRANSITION",
            lambda: task.change_status(target, None, ME, at=AT),
        )


def test_a_queued_task_can_be_put_back_to_pending_by_hand() -> None:
    task = given_status(TaskStatus.QUEUED)
    task.change_status(TaskStatus.PENDING, "not yet", ME, at=AT)
    assert then_events(task) == ["StatusChanged"]
    assert task.status == "pending" and task.completed_at is None


@pytest.mark.parametrize(
    "status,target",
    [
        (TaskStatus.QUEUED, TaskStatus.COMPLETED),
        (TaskStatus.RUNNING, TaskStatus.PENDING),
        (TaskStatus.RUNNING, TaskStatus.COMPLETED),
        (TaskStatus.AWAITING_APPROVAL, TaskStatus.PENDING),
        (TaskStatus.AWAITING_APPROVAL, TaskStatus.COMPLETED),
    ],
    ids=lambda s: s.value,
)
def test_a_task_in_flight_is_moved_by_its_execution_not_by_hand(
    status: TaskStatus, target: TaskStatus
) -> None:
    task = given_status(status)
    then_refused(
        task,
        TaskAlreadyRunningError,
        "TASK_ALREADY_RUNNING",
        lambda: task.change_status(target, None, ME, at=AT),
    )


@pytest.mark.parametrize("status", [TaskStatus.PENDING, TaskStatus.QUEUED], ids=str)
def test_a_direct_change_to_cancelled_of_an_idle_or_queued_task_cancels_it(
    status: TaskStatus,
) -> None:
    task = given_status(status)
    task.change_status(TaskStatus.CANCELLED, "by hand", ME, at=AT)
    assert then_events(task) == ["Cancelled"]
    assert task.status == "cancelled" and task.last_reason == "by hand"


# an agent process holds these: it is asked to stop, and the runner records when it is gone
WITH_AGENT: dict[str, list[Step]] = {
    "running": [queue, start],
    "awaiting_checkpoint": [queue, start, wait_on_checkpoint],
}


@pytest.mark.parametrize("path", WITH_AGENT.values(), ids=list(WITH_AGENT))
def test_a_direct_change_to_cancelled_of_a_running_task_only_requests_cancel(
    path: list[Step],
) -> None:
    task = given(*path)
    status = task.status
    task.change_status(TaskStatus.CANCELLED, "stop", ME, at=AT)
    assert then_events(task) == ["CancelRequested"]
    assert task.status == status and task.cancel_requested


@pytest.mark.parametrize(
    "status", [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.TIMED_OUT], ids=str
)
def test_a_finished_task_cannot_be_cancelled_by_hand(status: TaskStatus) -> None:
    task = given_status(status)
    then_refused(
        task,
        InvalidTransitionError,
        "INVALID_STATUS_TRANSITION",
        lambda: task.change_status(TaskStatus.CANCELLED, None, ME, at=AT),
    )


@pytest.mark.parametrize(
    "target", sorted(set(TaskStatus) - MANUAL_TARGETS, key=lambda s: s.value), ids=str
)
def test_statuses_owned_by_execution_cannot_be_set_directly(target: TaskStatus) -> None:
    task = given()
    then_refused(
        task,
        InvalidTransitionError,
        "INVALID_STATUS_TRANSITION",
        lambda: task.change_status(target, None, ME, at=AT),
    )


def test_changing_to_the_current_status_records_nothing() -> None:
    task = given()
    task.change_status(TaskStatus.PENDING, None, ME, at=AT)
    assert then_events(task) == []


# ---- execution requests ----------------------------------------------------------------------


def test_executing_a_pending_task_queues_the_first_attempt() -> None:
    task = given()
    execution_id = task.request_execution(ExecutionPolicy(timeout=60), Priority.HIGH, [], ME)
    [requested] = task.collect_events()
    assert type(requested).__name__ == "ExecutionRequested"
    assert requested.execution_id == execution_id == task.execution_id
    assert (requested.attempt, requested.priority, requested.retry) == (1, 3, False)
    assert requested.options == ExecutionPolicy(timeout=60).recorded()
    assert task.status == "queued" and task.priority == 3


def test_executing_keeps_the_task_priority_when_none_is_given() -> None:
    task = given(lambda t: t.set_priority(Priority.LOW, ME))
    task.request_execution(ExecutionPolicy(), None, [], ME)
    assert task.priority == 1


def test_executing_with_unmet_dependencies_is_refused() -> None:
    task = given()
    error = then_refused(
        task,
        DependencyNotMetError,
        "TASK_DEPENDENCY_NOT_MET",
        lambda: task.request_execution(ExecutionPolicy(), None, ["b", "a"], ME),
    )
    assert error.details == {"dependencies": ["a", "b"]}


@pytest.mark.parametrize("status", [TaskStatus.QUEUED, TaskStatus.RUNNING], ids=str)
def test_executing_a_task_in_flight_is_refused_as_already_running(status: TaskStatus) -> None:
    task = given_status(status)
    then_refused(task, TaskAlreadyRunningError, "TASK_ALREADY_RUNNING", lambda: queue(task))


def test_executing_a_task_awaiting_approval_is_refused_as_already_running() -> None:
    task = given_status(TaskStatus.AWAITING_APPROVAL)
    then_refused(task, TaskAlreadyRunningError, "TASK_ALREADY_RUNNING", lambda: queue(task))


def test_executing_a_completed_task_is_an_invalid_transition() -> None:
    task = given_status(TaskStatus.COMPLETED)
    then_refused(task, InvalidTransitionError, "INVALID_STATUS_TRANSITION", lambda: queue(task))


@pytest.mark.parametrize("status", UNSUCCESSFUL, ids=str)
def test_a_retry_queues_the_next_attempt_of_an_unsuccessful_task(status: TaskStatus) -> None:
    task = given_status(status)
    first = task.execution_id
    attempt = task.attempt
    second = task.request_execution(ExecutionPolicy(), None, [], ME, retry=True)
    [requested] = task.collect_events()
    assert requested.retry is True and requested.attempt == attempt + 1
    assert second != first and task.status == "queued"
    assert task.result is None and task.completed_at is None


def test_executing_a_failed_task_again_counts_as_a_retry() -> None:
    task = given_status(TaskStatus.FAILED)
    task.request_execution(ExecutionPolicy(), None, [], ME)
    [requested] = task.collect_events()
    assert requested.retry is True and requested.attempt == 2


@pytest.mark.parametrize(
    "status", [TaskStatus.PENDING, TaskStatus.COMPLETED, TaskStatus.RUNNING], ids=str
)
def test_only_an_unsuccessful_task_can_be_retried(status: TaskStatus) -> None:
    task = given_status(status)
    then_refused(
        task,
        InvalidTransitionError,
        "INVALID_STATUS_TRANSITION",
        lambda: task.request_execution(ExecutionPolicy(), None, [], ME, retry=True),
    )


# ---- execution facts -------------------------------------------------------------------------


def test_starting_the_current_execution_makes_the_task_run() -> None:
    task = given_status(TaskStatus.QUEUED)
    task.start_execution(str(task.execution_id), "worker-9", ME, at=AT)
    [started] = task.collect_events()
    assert started.worker_id == "worker-9" and started.execution_id == task.execution_id
    assert task.status == "running" and task.started_at == started.at == AT


def test_starting_another_execution_is_refused() -> None:
    task = given_status(TaskStatus.QUEUED)
    then_refused(
        task,
        InvalidTransitionError,
        "INVALID_STATUS_TRANSITION",
        lambda: task.start_execution("not-it", "worker-1", ME, at=AT),
    )


def test_starting_twice_is_refused_as_already_running() -> None:
    task = given_status(TaskStatus.RUNNING)
    then_refused(task, TaskAlreadyRunningError, "TASK_ALREADY_RUNNING", lambda: start(task))


def test_a_running_task_can_ask_for_review() -> None:
    task = given_status(TaskStatus.RUNNING)
    task.request_review("ready to test", ME)
    assert then_events(task) == ["ReviewRequested"]
    assert task.status == "awaiting_approval" and task.last_reason == "ready to test"


@pytest.mark.parametrize("status", [TaskStatus.PENDING, TaskStatus.COMPLETED], ids=str)
def test_only_a_running_task_can_ask_for_review(status: TaskStatus) -> None:
    task = given_status(status)
    then_refused(task, InvalidTransitionError, "INVALID_STATUS_TRANSITION", lambda: review(task))


@pytest.mark.parametrize(
    "outcome",
    [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.TIMED_OUT, TaskStatus.CANCELLED],
    ids=str,
)
def test_a_running_task_finishes_with_each_outcome(outcome: TaskStatus) -> None:
    task = given_status(TaskStatus.RUNNING)
    task.finish_execution(outcome, {"exit_code": 3, "branch": "fix"}, ME, at=AT)
    [finished] = task.collect_events()
    assert finished.outcome == outcome.value
    assert task.status == outcome.value
    assert task.result == {"exit_code": 3, "branch": "fix"}
    assert task.completed_at == finished.at == AT
    assert (task.progress_percentage == 100) == (outcome == TaskStatus.COMPLETED)


@pytest.mark.parametrize(
    "outcome", [TaskStatus.RUNNING, TaskStatus.QUEUED, TaskStatus.PENDING], ids=str
)
def test_a_status_that_is_no_outcome_cannot_finish_an_execution(outcome: TaskStatus) -> None:
    task = given_status(TaskStatus.RUNNING)
    then_refused(
        task,
        RuleViolationError,
        "VALIDATION_ERROR",
        lambda: task.finish_execution(outcome, {}, ME, at=AT),
    )


def test_a_finished_task_cannot_finish_again() -> None:
    task = given_status(TaskStatus.COMPLETED)
    then_refused(
        task,
        InvalidTransitionError,
        "INVALID_STATUS_TRANSITION",
        lambda: finish(TaskStatus.FAILED)(task),
    )


@pytest.mark.parametrize("deleted", [False, True], ids=["live", "deleted"])
def test_a_task_with_no_execution_in_flight_cannot_finish_one(deleted: bool) -> None:
    task = given(delete) if deleted else given()
    with pytest.raises(DomainError):
        finish(TaskStatus.COMPLETED)(task)
    assert task.status == "pending"


# ---- cancel ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [TaskStatus.PENDING, TaskStatus.QUEUED], ids=str)
def test_cancelling_a_task_that_does_not_run_cancels_it_now(status: TaskStatus) -> None:
    task = given_status(status)
    assert task.cancel("not needed", ME, at=AT) is True
    [cancelled] = task.collect_events()
    assert type(cancelled).__name__ == "Cancelled"
    assert task.status == "cancelled" and task.completed_at == cancelled.at == AT
    assert task.last_reason == "not needed"


@pytest.mark.parametrize("path", WITH_AGENT.values(), ids=list(WITH_AGENT))
def test_cancelling_a_running_task_only_records_the_request(path: list[Step]) -> None:
    task = given(*path)
    status = task.status
    assert task.cancel("stop", ME, at=AT) is False
    assert then_events(task) == ["CancelRequested"]
    assert task.status == status and task.cancel_requested
    assert task.cancel("stop again", ME, at=AT) is False
    assert then_events(task) == []


def test_the_runner_honours_a_cancel_request_by_finishing_cancelled() -> None:
    task = given_status(TaskStatus.RUNNING, cancel)
    task.finish_execution(TaskStatus.CANCELLED, {}, ME, at=AT)
    assert task.status == "cancelled"


def test_a_new_execution_request_clears_an_old_cancel_request() -> None:
    task = given_status(TaskStatus.RUNNING, cancel, finish(TaskStatus.CANCELLED))
    assert task.cancel_requested
    task.request_execution(ExecutionPolicy(), None, [], ME, retry=True)
    assert not task.cancel_requested


@pytest.mark.parametrize("status", [*UNSUCCESSFUL, TaskStatus.COMPLETED], ids=str)
def test_a_finished_task_cannot_be_cancelled(status: TaskStatus) -> None:
    task = given_status(status)
    then_refused(task, InvalidTransitionError, "INVALID_STATUS_TRANSITION", lambda: cancel(task))


# ---- review of finished work -----------------------------------------------------------------


def test_approving_work_completes_the_task() -> None:
    task = given_status(TaskStatus.AWAITING_APPROVAL)
    assert task.approve("looks good", REVIEWER, at=AT) is True
    [approved] = task.collect_events()
    assert type(approved).__name__ == "WorkApproved" and approved.comment == "looks good"
    assert task.status == "completed" and task.progress_percentage == 100
    assert approved.actor == REVIEWER.id


def test_approving_twice_is_one_decision() -> None:
    task = given_status(TaskStatus.AWAITING_APPROVAL, approve)
    version = task.version
    assert task.approve("again", REVIEWER, at=AT) is False
    assert then_events(task) == [] and task.version == version


@pytest.mark.parametrize(
    "status", [TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.COMPLETED], ids=str
)
def test_only_work_awaiting_approval_can_be_approved(status: TaskStatus) -> None:
    task = given_status(status)
    then_refused(task, InvalidTransitionError, "INVALID_STATUS_TRANSITION", lambda: approve(task))


def test_a_task_completed_by_hand_was_not_approved() -> None:
    task = given(lambda t: t.change_status(TaskStatus.COMPLETED, "approved", ME, at=AT))
    then_refused(task, InvalidTransitionError, "INVALID_STATUS_TRANSITION", lambda: approve(task))


def test_rejecting_work_queues_a_new_attempt_with_the_feedback() -> None:
    task = given_status(TaskStatus.AWAITING_APPROVAL)
    old_execution, old_attempt = task.execution_id, task.attempt
    new_execution = task.reject("tests fail on CI", REVIEWER)
    [rejected] = task.collect_events()
    assert type(rejected).__name__ == "WorkRejected"
    assert rejected.reason == "tests fail on CI" and rejected.execution_id == new_execution
    assert task.status == "queued" and task.attempt == old_attempt + 1
    assert new_execution != old_execution and task.execution_id == new_execution
    assert task.last_reason == "tests fail on CI" and task.result is None


def test_the_attempt_queued_by_a_rejection_can_be_started_and_the_old_one_cannot() -> None:
    task = given_status(TaskStatus.AWAITING_APPROVAL)
    old = str(task.execution_id)
    new = task.reject("again", REVIEWER)
    then_refused(
        task,
        InvalidTransitionError,
        "INVALID_STATUS_TRANSITION",
        lambda: task.start_execution(old, "worker-1", ME, at=AT),
    )
    task.start_execution(new, "worker-1", ME, at=AT)
    assert task.status == "running"


@pytest.mark.parametrize("status", [TaskStatus.RUNNING, TaskStatus.COMPLETED], ids=str)
def test_only_work_awaiting_approval_can_be_rejected(status: TaskStatus) -> None:
    task = given_status(status)
    then_refused(
        task,
        InvalidTransitionError,
        "INVALID_STATUS_TRANSITION",
        lambda: task.reject("no", REVIEWER),
    )


def test_cancelling_work_in_review_cancels_it_at_once_as_no_agent_is_left_to_stop() -> None:
    task = given_status(TaskStatus.AWAITING_APPROVAL)
    assert task.cancel("not wanted", REVIEWER, at=AT) is True
    assert then_events(task) == ["Cancelled"] and task.status == "cancelled"


def test_work_cannot_be_approved_while_the_agent_waits_on_a_checkpoint() -> None:
    task = given(queue, start, wait_on_checkpoint)
    assert task.status == "awaiting_approval"
    then_refused(task, InvalidTransitionError, "INVALID_STATUS_TRANSITION", lambda: approve(task))
    then_refused(
        task,
        InvalidTransitionError,
        "INVALID_STATUS_TRANSITION",
        lambda: task.reject("no", REVIEWER),
    )


# ---- every event names its actor and request -------------------------------------------------

ActorStep = Callable[[Task, Actor], Any]

SCENARIO: list[ActorStep] = [
    lambda t, a: t.update({"title": "t2", "progress_percentage": 10}, a),
    lambda t, a: t.add_tags(["x"], a),
    lambda t, a: t.remove_tags(["x"], a),
    lambda t, a: t.assign("a", a),
    lambda t, a: t.set_priority(Priority.HIGH, a),
    lambda t, a: t.change_slug("s", a),
    lambda t, a: t.add_dependency(new_task(), False, a),
    lambda t, a: t.remove_dependency(t.dependencies[0], a),
    lambda t, a: t.request_execution(ExecutionPolicy(), None, [], a),
    lambda t, a: t.change_status(TaskStatus.PENDING, "not yet", a, at=AT),
    lambda t, a: t.change_status(TaskStatus.CANCELLED, "x", a, at=AT),
    lambda t, a: t.request_execution(ExecutionPolicy(), None, [], a, retry=True),
    lambda t, a: t.start_execution(t.execution_id, "worker-1", a, at=AT),
    lambda t, a: t.cancel("stop", a, at=AT),
    lambda t, a: t.request_review("done", a),
    lambda t, a: t.reject("no", a),
    lambda t, a: t.start_execution(t.execution_id, "worker-1", a, at=AT),
    lambda t, a: t.request_review("done", a),
    lambda t, a: t.approve("ok", a, at=AT),
    lambda t, a: t.change_slug(None, a),
    lambda t, a: t.delete("done with it", a),
]


def test_every_event_records_the_actor_and_the_request_id() -> None:
    task = new_task(actor="creator", request_id="req-0")
    [created] = task.collect_events()
    assert (created.actor, created.request_id) == ("creator", "req-0")
    names = set()
    for number, step in enumerate(SCENARIO, start=1):
        actor = Actor(id=f"user-{number}", team_id="team-1", request_id=f"req-{number}")
        step(task, actor)
        events = task.collect_events()
        assert events, f"step {number} recorded nothing"
        for event in events:
            names.add(type(event).__name__)
            assert (event.actor, event.request_id) == (actor.id, actor.request_id)
    assert len(names) == 17
    assert task.deleted and task.status == "completed"
