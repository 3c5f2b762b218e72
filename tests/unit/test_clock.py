"""The Clock port's two implementations: the system's (infrastructure/clock.py) and the one a
test moves (tests/clock.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.ports import Clock
from infrastructure.clock import SystemClock
from tests.clock import ManualClock

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def test_the_system_clock_tells_aware_utc_time_and_a_monotonic_reading() -> None:
    clock: Clock = SystemClock()
    assert clock.now().tzinfo == UTC
    first = clock.monotonic()
    assert clock.monotonic() >= first


def test_advancing_moves_the_wall_clock_and_the_monotonic_reading_together() -> None:
    clock: Clock = ManualClock(T0)
    assert (clock.now(), clock.time(), clock.monotonic()) == (T0, T0.timestamp(), 0.0)
    assert isinstance(clock, ManualClock)
    clock.advance(90)
    assert clock.now() == T0 + timedelta(seconds=90) and clock.time() == T0.timestamp() + 90
    assert clock.monotonic() == 90.0


def test_setting_the_wall_clock_leaves_the_monotonic_reading_where_it_was() -> None:
    clock = ManualClock(T0)
    clock.advance(5)
    clock.set(T0 - timedelta(days=1))  # a wall clock may be set back; intervals are not
    assert clock.now() == T0 - timedelta(days=1) and clock.monotonic() == 5.0
    assert clock.start == T0


def test_a_manual_clock_refuses_to_go_back_or_to_forget_its_time_zone() -> None:
    clock = ManualClock(T0)
    with pytest.raises(ValueError, match="back"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="aware"):
        clock.set(datetime(2030, 1, 1))  # naive
    assert clock.now() == T0
