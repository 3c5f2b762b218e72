"""The Quarantine aggregate: recorded once per consumer and position, retried, released, failed
again; a refused retry changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.quarantine import (
    QUARANTINED,
    RELEASED,
    RETRY_REQUESTED,
    Quarantine,
    RetryNotAllowedError,
    quarantine_id,
    short,
)

AT = datetime(2030, 1, 1, 11, 0, tzinfo=UTC)  # the moment a handler gives a stamped change


def recorded(consumer: str = "projections", position: int = 7) -> Quarantine:
    return Quarantine(
        consumer=consumer,
        position=position,
        topic="domain.task:Task.Created",
        team_id="team-a",
        error_type="DataError",
        error="NUL",
        attempts=5,
    )


def test_the_id_is_derived_from_the_consumer_and_the_position():
    assert recorded().id == quarantine_id("projections", 7)
    assert recorded("relay").id != recorded("projections").id
    assert recorded(position=8).id != recorded().id


def test_a_retry_is_requested_then_released():
    entry = recorded()
    entry.request_retry("user:1", "req-1", at=AT)
    assert entry.status == RETRY_REQUESTED and entry.retry_requested_by == "user:1"
    assert entry.retry_requested_at == AT
    entry.release(at=AT + timedelta(seconds=3))
    assert entry.status == RELEASED and entry.released_at == AT + timedelta(seconds=3)
    names = [type(e).__name__ for e in entry.collect_events()]
    assert names == ["Recorded", "RetryRequested", "Released"]


def test_a_retry_that_fails_again_is_quarantined_again():
    entry = recorded()
    entry.request_retry("user:1", "req-1", at=AT)
    assert entry.fail_again("RecursionError", "deep", 1) is True
    assert (entry.status, entry.error_type, entry.failures) == (QUARANTINED, "RecursionError", 2)


def test_failing_again_on_a_quarantined_entry_records_nothing():
    entry = recorded()
    entry.collect_events()
    assert entry.fail_again("DataError", "NUL", 5) is False
    assert entry.collect_events() == []


def test_a_retry_of_an_entry_not_quarantined_is_refused_and_changes_nothing():
    entry = recorded()
    entry.request_retry("user:1", "req-1", at=AT)
    entry.collect_events()
    with pytest.raises(RetryNotAllowedError):
        entry.request_retry("user:2", "req-2", at=AT)
    assert entry.collect_events() == [] and entry.retry_requested_by == "user:1"


def test_long_messages_are_cut_short():
    assert len(short("x" * 10_000)) == 500
    assert short("fine") == "fine"
