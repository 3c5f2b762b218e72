"""Given a task, when the runner records a fact of its execution, then events or an error.

The runner's facts (domain/task.py): a worker starts the execution holding a lease and renews it,
reports progress, phases and usage, the agent waits on a question or a checkpoint and resumes
when people answer, an execution may expire in the queue, and finished work waits in review.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from eventsourcing.application import Application

from domain.errors import (
    DeletedError,
    DomainError,
    InvalidTransitionError,
    RuleViolationError,
    TaskAlreadyRunningError,
)
from domain.execution_policy import ExecutionPolicy
from domain.task import NO_USAGE, Task
from domain.usage import Usage, usage_of
from domain.values import Actor, TaskStatus
from tests.builders import a_task

ME = Actor(id="user-1", team_id="team-1", request_id="req-1")
RUNNER = Actor(id="worker-1", team_id="team-1", request_id="req-9")
LEASE = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2030, 1, 1, 12, 5, tzinfo=UTC)
AT = datetime(2030, 1, 1, 11, 0, tzinfo=UTC)  # the moment a handler gives a stamped change
INVALID = (InvalidTransitionError, "INVALID_STATUS_TRANSITION")
ALREADY_RUNNING = (TaskAlreadyRunningError, "TASK_ALREADY_RUNNING")
DELETED = (DeletedError, "RESOURCE_NOT_FOUND")

Step = Callable[[Task], Any]


def new_task() -> Task:
    return a_task(actor=ME.id, request_id=ME.request_id)


# ---- steps that bring a task into a state ----------------------------------------------------


def queue(task: Task) -> None:
    task.request_execution(ExecutionPolicy(), None, [], ME)


def start(task: Task) -> None:
    task.start_execution(str(task.execution_id), "worker-1", RUNNER, lease_until=LEASE, at=AT)


def ask(task: Task) -> None:
    task.wait_for(str(task.execution_id), "question-1", "question", RUNNER)


def checkpoint(task: Task) -> None:
    task.wait_for(str(task.execution_id), "checkpoint-1", "checkpoint", RUNNER)


def review(task: Task) -> None:
    task.request_review("ready to test", RUNNER, result={"branch": "fix-login"})


def finish(outcome: TaskStatus) -> Step:
    return lambda task: task.finish_execution(outcome, {"exit_code": 0}, RUNNER, at=AT)


def cancel(task: Task) -> None:
    task.cancel("not needed", ME, at=AT)


def delete(task: Task) -> None:
    task.delete("obsolete", ME)


RUNNING = [queue, start]


def given(*steps: Step) -> Task:
    """A task after ``steps``, with its events already saved (none pending)."""
    task = new_task()
    for step in steps:
        step(task)
    task.collect_events()
    return task


def then_events(task: Task) -> list[str]:
    return [type(e).__name__ for e in task.collect_events()]


def then_refused(
    task: Task, refusal: tuple[type[DomainError], str], command: Callable[[], Any]
) -> DomainError:
    """The command raises exactly this error with its code, and changes nothing."""
    error_class, code = refusal
    before, version = copy.deepcopy(task.__dict__), task.version
    with pytest.raises(DomainError) as raised:
        command()
    assert type(raised.value) is error_class and raised.value.code == code
    assert task.__dict__ == before and task.version == version
    return raised.value


# ---- start -----------------------------------------------------------------------------------


def test_starting_records_the_worker_and_the_lease_it_holds() -> None:
    task = given(queue)
    task.start_execution(str(task.execution_id), "worker-7", RUNNER, lease_until=LEASE, at=AT)
    [started] = task.collect_events()
    assert type(started).__name__ == "ExecutionStarted"
    assert (started.execution_id, started.worker_id) == (task.execution_id, "worker-7")
    assert started.lease_until == LEASE
    assert (task.status, task.worker_id, task.lease_until) == ("running", "worker-7", LEASE)
    assert task.started_at == started.at and task.waiting_on is None


def test_starting_without_a_lease_holds_the_execution_with_no_expiry() -> None:
    task = given(queue)
    task.start_execution(str(task.execution_id), "worker-1", RUNNER, at=AT)
    [started] = task.collect_events()
    assert started.lease_until is None
    assert task.worker_id == "worker-1" and task.lease_until is None


def test_a_new_attempt_starts_with_no_phases_and_keeps_the_usage_of_earlier_ones() -> None:
    def work(task: Task) -> None:
        task.change_phase(str(task.execution_id), "code", "started", RUNNER, at=AT)
        task.record_usage(str(task.execution_id), Usage(input_tokens=5, model="opus"), RUNNER)

    task = given(*RUNNING, work, review, lambda t: t.reject("tests fail", ME))
    start(task)
    assert task.phases == []
    assert task.usage["input_tokens"] == 5 and task.usage["models"] == ["opus"]


START_REFUSALS: dict[str, tuple[list[Step], str | None, tuple[type[DomainError], str]]] = {
    "another execution": ([queue], "another-execution", INVALID),
    "no execution was requested": ([], None, INVALID),
    "already running": (RUNNING, None, ALREADY_RUNNING),
    "the agent waits for an answer": ([*RUNNING, ask], None, ALREADY_RUNNING),
    "the work waits in review": ([*RUNNING, review], None, ALREADY_RUNNING),
    "the execution expired in the queue": (
        [queue, lambda t: t.expire_in_queue(str(t.execution_id), RUNNER, at=AT)],
        None,
        INVALID,
    ),
    "the task was deleted": ([delete], None, DELETED),
}


@pytest.mark.parametrize(
    "steps,execution_id,refusal", START_REFUSALS.values(), ids=list(START_REFUSALS)
)
def test_starting_is_refused_unless_the_current_execution_waits_in_the_queue(
    steps: list[Step], execution_id: str | None, refusal: tuple[type[DomainError], str]
) -> None:
    task = given(*steps)
    wanted: Any = execution_id or task.execution_id
    then_refused(task, refusal, lambda: task.start_execution(wanted, "worker-2", RUNNER, at=AT))


# ---- what the runner reports while the agent works ---------------------------------------------

REPORTS: dict[str, Callable[[Task, str], Any]] = {
    "renew_lease": lambda t, e: t.renew_lease(e, LATER, RUNNER),
    "report_progress": lambda t, e: t.report_progress(e, 50, "halfway", RUNNER),
    "change_phase": lambda t, e: t.change_phase(e, "test", "started", RUNNER, at=AT),
    "record_usage": lambda t, e: t.record_usage(e, Usage(input_tokens=1), RUNNER),
    "wait_for": lambda t, e: t.wait_for(e, "question-2", "question", RUNNER),
}

# the states in which no worker holds the execution named
NOT_HELD: dict[str, tuple[list[Step], str | None, tuple[type[DomainError], str]]] = {
    "another execution": (RUNNING, "another-execution", INVALID),
    "an execution still queued": ([queue], None, INVALID),
    "work in review, whose agent is gone": ([*RUNNING, review], None, INVALID),
    "a finished execution": ([*RUNNING, finish(TaskStatus.COMPLETED)], None, INVALID),
    "an execution cancelled in the queue": ([queue, cancel], None, INVALID),
    "a deleted task": ([*RUNNING, finish(TaskStatus.FAILED), delete], None, DELETED),
}


@pytest.mark.parametrize("report", REPORTS.values(), ids=list(REPORTS))
@pytest.mark.parametrize("steps,execution_id,refusal", NOT_HELD.values(), ids=list(NOT_HELD))
def test_the_runner_reports_only_on_the_execution_a_worker_holds(
    report: Callable[[Task, str], Any],
    steps: list[Step],
    execution_id: str | None,
    refusal: tuple[type[DomainError], str],
) -> None:
    task = given(*steps)
    wanted = execution_id or str(task.execution_id)
    then_refused(task, refusal, lambda: report(task, wanted))


def test_renewing_the_lease_records_the_new_expiry() -> None:
    task = given(*RUNNING)
    task.renew_lease(str(task.execution_id), LATER, RUNNER)
    [renewed] = task.collect_events()
    assert type(renewed).__name__ == "LeaseRenewed"
    assert (renewed.execution_id, renewed.until) == (task.execution_id, LATER)
    assert task.lease_until == LATER and task.worker_id == "worker-1"


@pytest.mark.parametrize("wait", [ask, checkpoint], ids=["question", "checkpoint"])
def test_the_lease_is_renewed_while_the_agent_waits_on_people(wait: Step) -> None:
    task = given(*RUNNING, wait)
    status = task.status
    task.renew_lease(str(task.execution_id), LATER, RUNNER)
    assert then_events(task) == ["LeaseRenewed"]
    assert task.lease_until == LATER and task.status == status


def test_reporting_progress_records_the_percentage_and_the_message() -> None:
    task = given(*RUNNING)
    task.report_progress(str(task.execution_id), 40, "compiling", RUNNER)
    [reported] = task.collect_events()
    assert type(reported).__name__ == "ProgressReported"
    assert (reported.execution_id, reported.percentage, reported.message) == (
        task.execution_id,
        40,
        "compiling",
    )
    assert task.progress_percentage == 40


def test_a_progress_message_without_a_percentage_keeps_the_percentage() -> None:
    task = given(*RUNNING, lambda t: t.report_progress(str(t.execution_id), 40, None, RUNNER))
    task.report_progress(str(task.execution_id), None, "still compiling", RUNNER)
    [reported] = task.collect_events()
    assert reported.message == "still compiling" and reported.percentage is None
    assert task.progress_percentage == 40


# ---- phases ------------------------------------------------------------------------------------


def phase(name: str, status: str) -> Step:
    return lambda task: task.change_phase(str(task.execution_id), name, status, RUNNER, at=AT)


def test_a_phase_starts_with_a_start_time_and_no_finish_time() -> None:
    task = given(*RUNNING)
    phase("plan", "started")(task)
    [changed] = task.collect_events()
    assert type(changed).__name__ == "PhaseChanged"
    assert (changed.execution_id, changed.name, changed.status) == (
        task.execution_id,
        "plan",
        "started",
    )
    assert task.phases == [
        {"name": "plan", "status": "started", "started_at": changed.at, "finished_at": None}
    ]


def test_finishing_a_phase_records_its_status_and_finish_time_and_keeps_the_order() -> None:
    task = given(*RUNNING, phase("plan", "started"), phase("code", "started"))
    started_at = task.phases[0]["started_at"]
    phase("plan", "completed")(task)
    [changed] = task.collect_events()
    assert [(p["name"], p["status"]) for p in task.phases] == [
        ("plan", "completed"),
        ("code", "started"),
    ]
    assert task.phases[0]["started_at"] == started_at
    assert task.phases[0]["finished_at"] == changed.at
    assert task.phases[1]["finished_at"] is None


def test_a_phase_first_reported_finished_gets_both_times() -> None:
    task = given(*RUNNING)
    phase("lint", "skipped")(task)
    [changed] = task.collect_events()
    [lint] = task.phases
    assert lint["status"] == "skipped"
    assert lint["started_at"] == lint["finished_at"] == changed.at


def test_a_phase_started_again_runs_again_with_no_finish_time() -> None:
    task = given(*RUNNING, phase("test", "started"), phase("test", "failed"))
    phase("test", "started")(task)
    [test] = task.phases
    assert test["status"] == "started" and test["finished_at"] is None


# ---- usage -------------------------------------------------------------------------------------


def usage(**fields: Any) -> Step:
    return lambda task: task.record_usage(str(task.execution_id), Usage(**fields), RUNNER)


def test_a_new_task_has_used_nothing() -> None:
    assert given().usage == {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "cache_creation_tokens": 0,
        "reasoning_tokens": 0,
        "requests": 0,
        "cost_usd": 0.0,
        "reported_cost_usd": 0.0,
        "models": [],
    }


def test_usage_adds_up_tokens_and_cost_and_lists_each_model_once() -> None:
    task = given(*RUNNING)
    usage(
        input_tokens=100,
        output_tokens=20,
        cache_read_tokens=3,
        cache_write_tokens=4,
        reasoning_tokens=5,
        cost_usd=0.1,
        reported_cost_usd=0.5,
        price_version=1,
        model="opus",
    )(task)
    usage(input_tokens=1, output_tokens=2, cost_usd=0.2, requests=3, model="sonnet")(task)
    usage(input_tokens=1, cost_usd=0.000000004, model="opus")(task)
    recorded = task.collect_events()
    assert [type(e).__name__ for e in recorded] == ["UsageRecorded"] * 3
    assert usage_of(recorded[1]) == Usage(
        input_tokens=1, output_tokens=2, cost_usd=0.2, requests=3, model="sonnet"
    )
    assert recorded[0].price_version == 1 and recorded[0].reported_cost_usd == 0.5
    assert task.usage == {
        "input_tokens": 102,
        "output_tokens": 22,
        "cache_read_tokens": 3,
        "cache_write_tokens": 4,
        "cache_creation_tokens": 4,
        "reasoning_tokens": 5,
        "requests": 5,
        "cost_usd": 0.3,  # rounded to a hundred-millionth of a dollar
        "reported_cost_usd": 0.5,
        "models": ["opus", "sonnet"],
    }


def test_usage_with_missing_or_empty_fields_counts_them_as_zero() -> None:
    task = given(*RUNNING, usage(output_tokens=7))
    usage(reasoning_tokens=None, reported_cost_usd=None, model=None, requests=0)(task)
    assert then_events(task) == ["UsageRecorded"]
    assert task.usage == {**NO_USAGE, "output_tokens": 7, "requests": 1}
    assert NO_USAGE["models"] == [] and NO_USAGE["output_tokens"] == 0


# ---- waiting on people and resuming ------------------------------------------------------------


def test_a_question_makes_the_task_need_input_and_wait_on_it() -> None:
    task = given(*RUNNING)
    ask(task)
    [requested] = task.collect_events()
    assert type(requested).__name__ == "InputRequested"
    assert (requested.execution_id, requested.item_id) == (task.execution_id, "question-1")
    assert (requested.kind, requested.status) == ("question", "needs_input")
    assert task.status == "needs_input" and task.waiting_on == "question-1"
    assert (task.worker_id, task.lease_until) == ("worker-1", LEASE)


def test_a_checkpoint_makes_the_task_await_approval_with_the_agent_still_there() -> None:
    task = given(*RUNNING)
    checkpoint(task)
    [requested] = task.collect_events()
    assert (requested.kind, requested.status) == ("checkpoint", "awaiting_approval")
    assert task.status == "awaiting_approval" and task.waiting_on == "checkpoint-1"
    assert (task.worker_id, task.lease_until) == ("worker-1", LEASE)


@pytest.mark.parametrize("first", [ask, checkpoint], ids=["question", "checkpoint"])
@pytest.mark.parametrize("second", [ask, checkpoint], ids=["then question", "then checkpoint"])
def test_an_agent_that_already_waits_cannot_wait_for_something_else(
    first: Step, second: Step
) -> None:
    task = given(*RUNNING, first)
    then_refused(task, INVALID, lambda: second(task))


def test_waiting_for_something_that_is_neither_a_question_nor_a_checkpoint_is_refused() -> None:
    task = given(*RUNNING)
    then_refused(
        task,
        (RuleViolationError, "VALIDATION_ERROR"),
        lambda: task.wait_for(str(task.execution_id), "x-1", "experience", RUNNER),
    )


@pytest.mark.parametrize(
    "wait,item", [(ask, "question-1"), (checkpoint, "checkpoint-1")], ids=["answer", "approval"]
)
def test_a_decision_on_what_the_agent_waits_for_lets_it_run_on(wait: Step, item: str) -> None:
    task = given(*RUNNING, wait)
    task.resume(item, ME)
    [resumed] = task.collect_events()
    assert type(resumed).__name__ == "Resumed" and resumed.item_id == item
    assert task.status == "running" and task.waiting_on is None
    assert (task.worker_id, task.lease_until) == ("worker-1", LEASE)


def test_an_agent_that_resumed_can_wait_again() -> None:
    task = given(*RUNNING, ask, lambda t: t.resume("question-1", ME))
    checkpoint(task)
    assert then_events(task) == ["InputRequested"]
    assert task.waiting_on == "checkpoint-1"


RESUME_REFUSALS: dict[str, tuple[list[Step], str, tuple[type[DomainError], str]]] = {
    "another item than the one waited on": ([*RUNNING, ask], "question-2", INVALID),
    "a question while the agent waits on a checkpoint": (
        [*RUNNING, checkpoint],
        "question-1",
        INVALID,
    ),
    "an agent that waits for nothing": (RUNNING, "question-1", INVALID),
    "the same item twice": (
        [*RUNNING, ask, lambda t: t.resume("question-1", ME)],
        "question-1",
        INVALID,
    ),
    "work in review": ([*RUNNING, review], "checkpoint-1", INVALID),
    "an execution still queued": ([queue], "question-1", INVALID),
    "a finished execution": ([*RUNNING, ask, finish(TaskStatus.FAILED)], "question-1", INVALID),
    "a deleted task": ([delete], "question-1", DELETED),
}


@pytest.mark.parametrize("steps,item,refusal", RESUME_REFUSALS.values(), ids=list(RESUME_REFUSALS))
def test_resuming_is_refused_unless_the_agent_waits_for_that_item(
    steps: list[Step], item: str, refusal: tuple[type[DomainError], str]
) -> None:
    task = given(*steps)
    then_refused(task, refusal, lambda: task.resume(item, ME))


def test_resuming_with_no_item_is_refused_even_when_nothing_is_waited_for() -> None:
    task = given(*RUNNING, review)
    no_item: Any = None
    then_refused(task, INVALID, lambda: task.resume(no_item, ME))


def test_resuming_the_wrong_item_names_it() -> None:
    task = given(*RUNNING, ask)
    error = then_refused(task, INVALID, lambda: task.resume("question-2", ME))
    assert error.details == {"item_id": "question-2"}


# ---- expiry in the queue -----------------------------------------------------------------------


def expire(task: Task) -> None:
    task.expire_in_queue(str(task.execution_id), RUNNER, at=AT)


def test_an_execution_that_waits_too_long_in_the_queue_times_out() -> None:
    task = given(queue)
    expire(task)
    [expired] = task.collect_events()
    assert type(expired).__name__ == "ExpiredInQueue"
    assert expired.execution_id == task.execution_id
    assert task.status == "timed_out" and task.completed_at == expired.at == AT
    assert task.last_reason == "queue time-to-live expired" and task.worker_id is None


def test_a_task_that_expired_in_the_queue_can_be_retried() -> None:
    task = given(queue, expire)
    expired_execution = task.execution_id
    new_execution = task.request_execution(ExecutionPolicy(), None, [], ME, retry=True)
    assert new_execution != expired_execution and task.status == "queued"
    assert task.attempt == 2


def superseded(task: Task) -> str:
    """Work sent back by a reviewer queues a new execution: the old one is superseded."""
    old = str(task.execution_id)
    task.reject("tests fail", ME)
    return old


EXPIRY_REFUSALS: dict[str, tuple[list[Step], str | None, tuple[type[DomainError], str]]] = {
    "a started execution": (RUNNING, None, INVALID),
    "another execution": ([queue], "another-execution", INVALID),
    "no execution was requested": ([], None, INVALID),
    "an execution that expired already": ([queue, expire], None, INVALID),
    "an execution cancelled in the queue": ([queue, cancel], None, INVALID),
    "a deleted task": ([delete], None, DELETED),
}


@pytest.mark.parametrize(
    "steps,execution_id,refusal", EXPIRY_REFUSALS.values(), ids=list(EXPIRY_REFUSALS)
)
def test_only_the_execution_waiting_in_the_queue_can_expire(
    steps: list[Step], execution_id: str | None, refusal: tuple[type[DomainError], str]
) -> None:
    task = given(*steps)
    wanted: Any = execution_id or task.execution_id
    then_refused(task, refusal, lambda: task.expire_in_queue(wanted, RUNNER, at=AT))


def test_the_expiry_of_a_superseded_execution_is_refused() -> None:
    task = given(*RUNNING, review)
    old = superseded(task)
    task.collect_events()
    then_refused(task, INVALID, lambda: task.expire_in_queue(old, RUNNER, at=AT))
    expire(task)
    assert task.status == "timed_out"


# ---- review --------------------------------------------------------------------------------------


def test_review_with_a_result_records_it_and_lets_the_agent_go() -> None:
    task = given(*RUNNING, phase("code", "completed"))
    task.request_review("ready to test", RUNNER, result={"branch": "fix-login"})
    [requested] = task.collect_events()
    assert type(requested).__name__ == "ReviewRequested"
    assert (requested.summary, requested.result) == ("ready to test", {"branch": "fix-login"})
    assert task.status == "awaiting_approval" and task.last_reason == "ready to test"
    assert task.result == {"branch": "fix-login"}
    assert (task.worker_id, task.lease_until, task.waiting_on) == (None, None, None)
    assert [p["name"] for p in task.phases] == ["code"]


def test_review_without_a_result_records_none() -> None:
    task = given(*RUNNING)
    task.request_review(None, RUNNER)
    [requested] = task.collect_events()
    assert requested.result is None and task.result is None and task.worker_id is None


@pytest.mark.parametrize("wait", [ask, checkpoint], ids=["question", "checkpoint"])
def test_review_is_refused_while_the_agent_waits_on_people(wait: Step) -> None:
    task = given(*RUNNING, wait)
    then_refused(task, INVALID, lambda: review(task))


def test_work_sent_back_from_review_is_started_afresh_by_a_new_worker() -> None:
    task = given(*RUNNING, review, lambda t: t.reject("tests fail", ME))
    assert task.worker_id is None and task.result is None
    task.start_execution(str(task.execution_id), "worker-2", RUNNER, lease_until=LATER, at=AT)
    assert (task.status, task.worker_id, task.lease_until) == ("running", "worker-2", LATER)


def test_work_whose_checkpoint_was_decided_and_that_was_reviewed_can_be_approved() -> None:
    task = given(*RUNNING, checkpoint, lambda t: t.resume("checkpoint-1", ME), review)
    assert task.approve("good", ME, at=AT) is True
    assert then_events(task) == ["WorkApproved"] and task.status == "completed"


# ---- the end of an execution ---------------------------------------------------------------------

ENDS: dict[str, tuple[list[Step], TaskStatus]] = {
    "completed while running": (RUNNING, TaskStatus.COMPLETED),
    "failed while waiting for an answer": ([*RUNNING, ask], TaskStatus.FAILED),
    "cancelled while waiting on a checkpoint": ([*RUNNING, checkpoint], TaskStatus.CANCELLED),
    "timed out while waiting for an answer": ([*RUNNING, ask], TaskStatus.TIMED_OUT),
}


@pytest.mark.parametrize("steps,outcome", ENDS.values(), ids=list(ENDS))
def test_finishing_lets_the_worker_go_and_forgets_what_the_agent_waited_for(
    steps: list[Step], outcome: TaskStatus
) -> None:
    task = given(*steps)
    task.finish_execution(outcome, {"exit_code": 1}, RUNNER, at=AT)
    assert then_events(task) == ["ExecutionFinished"]
    assert task.status == outcome.value
    assert (task.worker_id, task.lease_until, task.waiting_on) == (None, None, None)


@pytest.mark.parametrize("wait", [ask, checkpoint], ids=["question", "checkpoint"])
def test_cancelling_an_agent_that_waits_on_people_only_asks_it_to_stop(wait: Step) -> None:
    task = given(*RUNNING, wait)
    status = task.status
    assert task.cancel("stop", ME, at=AT) is False
    assert then_events(task) == ["CancelRequested"]
    assert task.status == status and task.worker_id == "worker-1" and task.cancel_requested


def test_cancelling_work_in_review_cancels_it_at_once_and_no_worker_is_left() -> None:
    task = given(*RUNNING, review)
    assert task.cancel("not wanted", ME, at=AT) is True
    assert then_events(task) == ["Cancelled"]
    assert task.status == "cancelled" and task.worker_id is None


# ---- every fact names its actor and request, and replays to the same task ------------------------

ActorStep = Callable[[Task, Actor], Any]

EXECUTION: list[ActorStep] = [
    lambda t, a: t.request_execution(ExecutionPolicy(), None, [], a),
    lambda t, a: t.start_execution(str(t.execution_id), "worker-1", a, lease_until=LEASE, at=AT),
    lambda t, a: t.renew_lease(str(t.execution_id), LATER, a),
    lambda t, a: t.report_progress(str(t.execution_id), 30, "coding", a),
    lambda t, a: t.change_phase(str(t.execution_id), "code", "started", a, at=AT),
    lambda t, a: t.record_usage(str(t.execution_id), Usage(input_tokens=10, model="opus"), a),
    lambda t, a: t.wait_for(str(t.execution_id), "question-1", "question", a),
    lambda t, a: t.resume("question-1", a),
    lambda t, a: t.change_phase(str(t.execution_id), "code", "completed", a, at=AT),
    lambda t, a: t.wait_for(str(t.execution_id), "checkpoint-1", "checkpoint", a),
    lambda t, a: t.resume("checkpoint-1", a),
    lambda t, a: t.request_review("ready", a, result={"branch": "fix-login", "files": 3}),
]


def test_every_fact_of_an_execution_names_its_actor_and_request() -> None:
    task = given()
    for number, step in enumerate(EXECUTION, start=1):
        by = Actor(id=f"actor-{number}", team_id="team-1", request_id=f"req-{number}")
        step(task, by)
        [recorded] = task.collect_events()
        assert (recorded.actor, recorded.request_id) == (by.id, by.request_id)


def test_replaying_the_events_of_an_execution_rebuilds_the_same_task() -> None:
    app = Application[Any]()
    task = new_task()
    for step in EXECUTION:
        step(task, RUNNER)
    app.save(task)
    assert app.repository.get(task.id).__dict__ == task.__dict__
    assert task.status == "awaiting_approval" and len(task.phases) == 1
