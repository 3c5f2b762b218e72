"""A command that lost a race is decided again until a deadline, read from an injected clock."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import IntegrityError

from application.conflict_retry import MAX_PAUSE_SECONDS, ConflictRetry
from application.errors import RaceLostError, VersionConflictError
from tests.clock import ManualClock


class FakeTime:
    """The test's clock, moved only when something sleeps on it: no test waits in real time."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.pauses: list[float] = []

    @property
    def now(self) -> float:
        return self.clock.monotonic()

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.pauses.append(seconds)
        self.clock.advance(seconds)


def retry(time: FakeTime, seconds: float = 5.0, jitter: float = 1.0) -> ConflictRetry:
    return ConflictRetry(seconds, clock=time.clock, sleep=time.sleep, jitter=lambda: jitter)


def test_a_decide_that_always_conflicts_is_a_version_conflict_once_the_clock_passes_the_bound():
    time = FakeTime()
    tries: list[float] = []

    def decide() -> None:
        tries.append(time.now)
        raise IntegrityError("a concurrent writer won")

    with pytest.raises(RaceLostError) as raised:
        retry(time, seconds=5.0).run(decide)
    assert isinstance(raised.value, VersionConflictError)
    assert isinstance(raised.value.__cause__, IntegrityError)
    assert tries[-1] == pytest.approx(5.0)  # the last try is at the bound, none after it
    assert all(t < 5.0 for t in tries[:-1])
    assert raised.value.attempts == len(tries) >= 5.0 / MAX_PAUSE_SECONDS  # all along, not 5 tries
    assert sum(time.pauses) == pytest.approx(5.0)


def test_a_command_that_loses_twice_then_wins_returns_its_answer():
    time = FakeTime()
    outcomes = [IntegrityError("lost"), IntegrityError("lost again"), "written"]

    def decide() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert retry(time).run(decide) == "written"
    assert len(time.pauses) == 2


def test_pauses_are_jittered_below_a_ceiling_that_doubles_with_each_loss_up_to_the_maximum():
    time = FakeTime()
    highest, lowest = retry(time, jitter=1.0), retry(time, jitter=0.0)
    ceilings = [highest.pause(n) for n in range(1, 12)]
    assert ceilings[1] == pytest.approx(2 * ceilings[0])
    assert ceilings == sorted(ceilings)
    assert ceilings[-1] == MAX_PAUSE_SECONDS
    assert all(lowest.pause(n) == 0.0 for n in range(1, 12))
    assert retry(time, jitter=0.5).pause(3) == pytest.approx(ceilings[2] / 2)


def test_an_if_match_conflict_is_not_retried():
    time = FakeTime()
    calls: list[int] = []

    def decide() -> None:
        calls.append(1)
        raise VersionConflictError(3, 4)

    with pytest.raises(VersionConflictError):
        retry(time).run(decide)
    assert calls == [1]
    assert time.pauses == []


def test_a_zero_bound_tries_once():
    time = FakeTime()
    calls: list[int] = []

    def decide() -> None:
        calls.append(1)
        raise IntegrityError("lost")

    with pytest.raises(RaceLostError):
        retry(time, seconds=0).run(decide)
    assert calls == [1]
