"""Given a command run, when a command, then events or an error (domain/program_run.py)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given as for_all
from hypothesis import strategies as st

from domain.errors import DomainError, InvalidTransitionError, RuleViolationError
from domain.program_run import (
    LOST_AFTER,
    LOST_REASON,
    ProgramOutput,
    ProgramRun,
    RunStatus,
    output_id,
)
from domain.values import Actor

ADMIN = Actor(id="user:admin-1", team_id="team-1", request_id="req-1")


def given(*steps: Callable[[ProgramRun], Any], **fields: Any) -> ProgramRun:
    defaults: dict[str, Any] = {
        "team_id": "team-1",
        "command": "npm test",
        "argv": ["npm", "test"],
        "working_directory": "repo",
        "timeout": 30,
        "environment": ["NODE_ENV"],
        "pid": 4242,
        "host": "box-1",
        "actor": ADMIN.id,
        "request_id": ADMIN.request_id,
    }
    run = ProgramRun(**(defaults | fields))
    for step in steps:
        step(run)
    run.collect_events()
    return run


def then_events(run: ProgramRun) -> list[Any]:
    return list(run.collect_events())


def then_refused(run: ProgramRun, error: type[DomainError], command: Callable[[], Any]) -> None:
    before = copy.deepcopy(run.__dict__)
    with pytest.raises(error):
        command()
    assert run.__dict__ == before
    assert then_events(run) == []


def soon(run: ProgramRun) -> datetime:
    """A second after the run started: the moment a handler gives the next change."""
    return run.started_at + timedelta(seconds=1)


def cancel(run: ProgramRun) -> None:
    run.request_cancel(ADMIN, at=soon(run))


def complete(run: ProgramRun) -> None:
    run.finish(RunStatus.COMPLETED, 0, 12, False, at=soon(run))


def replayed(run: ProgramRun, events: list[Any]) -> ProgramRun:
    copy_of: Any = None
    for event in events:
        copy_of = event.mutate(copy_of)
    return copy_of


def test_a_started_run_is_running_and_records_names_of_variables_never_values() -> None:
    run = ProgramRun(
        team_id="team-1",
        command="env",
        argv=["env"],
        working_directory=".",
        timeout=5,
        environment=["NODE_ENV"],
        pid=7,
        host="box-1",
        actor=ADMIN.id,
        request_id=ADMIN.request_id,
    )
    (started,) = then_events(run)
    assert type(started).__name__ == "Started"
    assert started.environment == ["NODE_ENV"] and started.pid == 7 and started.host == "box-1"
    assert run.status == "running" and run.started_by == ADMIN.id
    assert run.exit_code is None and run.completed_at is None and not run.cancel_requested


def test_a_run_finishes_once_with_its_exit_code_duration_and_output_size() -> None:
    run = given()
    at = run.started_at + timedelta(seconds=2.5)
    run.finish(RunStatus.FAILED, 3, 1_000, True, at=at)
    (finished,) = then_events(run)
    assert type(finished).__name__ == "Finished"
    assert (run.status, run.exit_code, run.duration) == ("failed", 3, 2.5)
    assert run.output_bytes == 1_000 and run.truncated is True and run.completed_at == at
    then_refused(run, InvalidTransitionError, lambda: complete(run))


def test_running_is_not_a_way_to_end() -> None:
    run = given()
    at = soon(run)
    then_refused(run, RuleViolationError, lambda: run.finish(RunStatus.RUNNING, 0, 0, False, at=at))


def test_a_cancel_is_recorded_once_however_often_it_is_asked() -> None:
    run = given()
    cancel(run)
    cancel(run)
    events = then_events(run)
    assert [type(e).__name__ for e in events] == ["CancelRequested"]
    assert run.cancel_requested and run.cancelled_at == soon(run) and run.status == "running"
    run.finish(RunStatus.CANCELLED, -15, 0, False, reason="cancelled", at=soon(run))
    assert run.status == "cancelled" and run.exit_code == -15


def test_an_ended_run_cannot_be_cancelled() -> None:
    run = given(complete)
    then_refused(run, InvalidTransitionError, lambda: cancel(run))
    with pytest.raises(InvalidTransitionError) as refused:
        cancel(run)
    assert refused.value.details == {"status": "completed", "target": "cancelled"}


def test_a_run_nobody_ended_past_its_deadline_is_lost_and_reads_failed() -> None:
    run = given(timeout=10)
    still = run.deadline + LOST_AFTER
    assert run.status_at(still) == "running" and not run.lost(still)
    later = still + timedelta(seconds=1)
    assert run.lost(later) and run.status_at(later) == "failed"
    then_refused(run, InvalidTransitionError, lambda: run.request_cancel(ADMIN, at=later))
    assert LOST_REASON.startswith("lost")


def test_the_owner_may_still_record_the_end_of_a_run_that_reads_lost() -> None:
    run = given(timeout=1)
    late = run.deadline + LOST_AFTER + timedelta(minutes=5)
    run.finish(RunStatus.TIMED_OUT, -9, 0, False, at=late)
    assert run.status_at(late) == "timed_out"


def test_replaying_the_events_gives_the_same_run() -> None:
    run = ProgramRun(
        team_id="team-1",
        command="sleep 1",
        argv=["sleep", "1"],
        working_directory=".",
        timeout=5,
        environment=[],
        pid=9,
        host="box-1",
        actor=ADMIN.id,
        request_id=ADMIN.request_id,
    )
    cancel(run)
    run.finish(RunStatus.CANCELLED, -15, 3, False, reason="cancelled", at=soon(run))
    copy_of = replayed(run, then_events(run))
    assert copy_of.__dict__ == run.__dict__


def test_the_output_of_a_run_has_an_id_derived_from_the_run() -> None:
    run = given()
    chunks = [{"timestamp": "2025-01-01T00:00:00.000000Z", "stream": "stdout", "content": "ok\n"}]
    output = ProgramOutput(run_id=str(run.id), team_id="team-1", chunks=chunks, truncated=False)
    assert output.id == output_id(run.id) == output_id(str(run.id))
    assert output.chunks == chunks and output.chunks is not chunks
    assert output_id(given().id) != output.id


def test_a_large_output_is_recorded_in_events_of_bounded_size() -> None:
    run = given()
    chunks = [
        {"timestamp": "2025-01-01T00:00:00.000000Z", "stream": "stdout", "content": "x" * 16_384}
        for _ in range(64)
    ]
    output = ProgramOutput.record(str(run.id), "team-1", chunks, truncated=True)
    events = output.collect_events()
    assert [type(e).__name__ for e in events] == ["Recorded"] + ["Appended"] * 7
    assert all(sum(len(c["content"]) for c in e.chunks) <= 131_072 for e in events)
    assert output.chunks == chunks and output.truncated
    assert replayed(output, events).chunks == chunks
    empty = ProgramOutput.record(str(run.id), "team-1", [], truncated=False)
    assert empty.chunks == [] and len(empty.collect_events()) == 1


@for_all(
    st.lists(st.sampled_from(["cancel", "complete", "fail", "time_out", "cancelled"]), max_size=6)
)
def test_any_sequence_of_commands_ends_a_run_at_most_once(steps: list[str]) -> None:
    run = given()
    ends = {
        "complete": RunStatus.COMPLETED,
        "fail": RunStatus.FAILED,
        "time_out": RunStatus.TIMED_OUT,
        "cancelled": RunStatus.CANCELLED,
    }
    finished = None
    for step in steps:
        try:
            if step == "cancel":
                cancel(run)
            else:
                run.finish(ends[step], 1, 0, False, at=soon(run))
                finished = finished or ends[step].value
        except InvalidTransitionError:
            assert run.status != "running"
    names = [type(e).__name__ for e in run.collect_events()]
    assert names.count("Finished") == (1 if finished else 0)
    assert names.count("CancelRequested") <= 1
    assert run.status == (finished or "running")
