"""A clock a test moves by hand (the ``Clock`` port): backoffs, retries coming due, leases and
queue time-to-live running out, a consumer becoming "stuck", without waiting for any of it.

It starts at the moment it is made and stands still until the test moves it. Starting there
keeps it in step with the stored events' own ``timestamp`` (eventsourcing stamps it from the
system clock): a view's ``requested_at`` is a little after the clock's start, never long before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class ManualClock:
    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self.start = self._now  # where it began, for a test that says "n seconds in"
        self._elapsed = 0.0  # seconds advanced: the monotonic reading

    def now(self) -> datetime:
        return self._now

    def time(self) -> float:
        return self._now.timestamp()

    def monotonic(self) -> float:
        return self._elapsed

    def advance(self, seconds: float) -> None:
        """Time passes: the wall clock and the monotonic reading move on together."""
        if seconds < 0:
            raise ValueError("time does not go back; set() the wall clock instead")
        self._now += timedelta(seconds=seconds)
        self._elapsed += seconds

    def set(self, moment: datetime) -> None:
        """The wall clock jumps to ``moment`` (aware), as a system clock may be set; the
        monotonic reading does not move."""
        if moment.tzinfo is None:
            raise ValueError("an aware datetime, please")
        self._now = moment.astimezone(UTC)
