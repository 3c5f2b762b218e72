"""The one table from results and errors to HTTP (interfaces/http/errors.py): every kind of
result a handler returns has its answer, and an error is answered by its own row or by its
nearest base's."""

from __future__ import annotations

import msgspec
import pytest
from eventsourcing.persistence import IntegrityError

from application import results
from application.errors import NotFoundError, RaceLostError, VersionConflictError
from application.results import (
    Batch,
    Cancellation,
    Changed,
    Created,
    Deleted,
    Queued,
    Refused,
    Requested,
    Result,
    Submitted,
)
from domain.errors import DeletedError, DomainError, InvalidTransitionError, RuleViolationError
from interfaces.http.errors import EXPECTED, answer, describe

TASK = {"id": "t1", "slug": None, "status": "cancelled", "completed_at": "2030-01-01T00:00:00Z"}


def test_every_kind_of_result_has_an_answer() -> None:
    defined = {v for v in vars(results).values() if isinstance(v, type) and issubclass(v, Result)}
    samples: list[Result] = [
        Created(data={"id": "a"}, position=1),
        Changed(data={"id": "a"}, position=1),
        Requested(data={}, position=1),
        Queued(data={"task_id": "t1"}, position=1),
        Submitted(data={"task_id": "t1", "status": "queued"}, position=1),
        Deleted(kind="task", data={"task_id": "t1"}, position=1),
        Cancellation(task=TASK, now=True, reason=None, position=1),
        Batch(data={"operation": "assign"}, done=[], refused=[], position=1),
    ]
    assert {type(s) for s in samples} == defined - {Result, results.Represented}
    for sample in samples:
        answer(sample)


@pytest.mark.parametrize(
    ("result", "status"),
    [
        (Created(data={}, position=1), 201),
        (Changed(data={}, position=1), 200),
        (Queued(data={}, position=1), 202),
        (Requested(data={}, position=1), 202),
        (Cancellation(task=TASK, now=True, reason=None, position=1), 200),
        (Cancellation(task=TASK, now=False, reason=None, position=1), 202),
    ],
    ids=["created", "changed", "queued", "requested", "cancelled now", "asked to stop"],
)
def test_a_result_answers_the_status_of_its_kind(result: Result, status: int) -> None:
    assert answer(result)[0] == status


def test_shapes_that_add_words_to_a_result() -> None:
    submitted = Submitted(data={"task_id": "t1", "status": "queued"}, position=1)
    assert answer(submitted) == (
        202,
        {"task_id": "t1", "status": "queued", "message": "Task queued successfully"},
    )
    deleted = Deleted(kind="project", data={"project_id": "p1"}, position=1)
    assert answer(deleted)[1] == {"message": "Project deleted successfully", "project_id": "p1"}
    cancelled = Cancellation(task=TASK, now=True, reason="no", position=1)
    assert answer(cancelled)[1] == {
        "task_id": "t1",
        "status": "cancelled",
        "cancel_requested": False,
        "cancelled_at": "2030-01-01T00:00:00Z",
        "reason": "no",
    }


def test_a_batch_shows_each_refused_item_as_it_would_have_answered_alone() -> None:
    refused = [
        Refused("t2", NotFoundError("task", "t2")),
        Refused("t3", InvalidTransitionError("no")),
    ]
    batch = Batch(data={"operation": "delete"}, done=["t1"], refused=refused, position=9)
    status, body = answer(batch)
    assert status == 200
    assert body == {
        "operation": "delete",
        "affected_count": 1,
        "successful": ["t1"],
        "failed": ["t2", "t3"],
        "errors": [
            {
                "task_id": "t2",
                "code": "TASK_NOT_FOUND",
                "message": "task t2 not found",
                "status": 404,
            },
            {"task_id": "t3", "code": "INVALID_STATUS_TRANSITION", "message": "no", "status": 409},
        ],
    }


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (DeletedError("gone", task_id="t1"), 404, "RESOURCE_NOT_FOUND"),
        (RuleViolationError("bad", field="x"), 422, "VALIDATION_ERROR"),
        (InvalidTransitionError("no"), 409, "INVALID_STATUS_TRANSITION"),
        (DomainError("no"), 409, "CONFLICT"),
        (RaceLostError(5, 5.0), 409, "VERSION_CONFLICT"),
        (VersionConflictError(1, 2), 409, "VERSION_CONFLICT"),
        (IntegrityError("lost"), 409, "VERSION_CONFLICT"),
        (msgspec.ValidationError("Expected `int` - at `$.x`"), 422, "VALIDATION_ERROR"),
        (msgspec.DecodeError("truncated"), 422, "VALIDATION_INVALID_FORMAT"),
        (KeyError("a bug"), 500, "INTERNAL_ERROR"),
    ],
)
def test_an_error_is_answered_by_its_own_row_or_its_nearest_bases(
    error: Exception, status: int, code: str
) -> None:
    assert describe(error)[:2] == (status, code)


def test_the_details_of_an_error_come_from_its_row() -> None:
    assert describe(RaceLostError(3, 1.5))[3] == {"attempts": 3, "retried_seconds": 1.5}
    assert describe(VersionConflictError(1, 2))[3] == {"expected": 1, "actual": 2}
    assert describe(msgspec.ValidationError("Expected `int` - at `$.x`"))[3] == {
        "field": "$.x",
        "issue": "Expected `int` - at `$.x`",
    }
    assert describe(DeletedError("gone", task_id="t1"))[3] == {"task_id": "t1"}


def test_every_error_row_is_handed_to_the_error_handler() -> None:
    assert DomainError in EXPECTED and NotFoundError in EXPECTED
    assert all(issubclass(kind, Exception) for kind in EXPECTED)
