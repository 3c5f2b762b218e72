"""A command that lost a race decides again on the fresh state, for as long as a deadline allows.

A request without ``If-Match`` asked for no optimistic check, so a concurrent writer that commits
first is no reason to refuse it: the command loads again and decides again. How many times it can
lose depends on how many clients write the same aggregate at once, so the bound is time, not a
count of tries (five tries failed a fifth of the updates of four clients on one task). Between
tries a random pause, growing with each loss ("full jitter"), spreads the contenders out so that
they stop colliding in lockstep; it stays short, so a loser is soon back in the race.

The clock (its monotonic reading) and the pause are injected: tests reach the deadline without
waiting for it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from eventsourcing.persistence import IntegrityError

from application.errors import RaceLostError
from application.ports import Clock

R = TypeVar("R")

DEFAULT_SECONDS = 5.0
FIRST_PAUSE_SECONDS = 0.002  # about one group commit
MAX_PAUSE_SECONDS = 0.1


class ConflictRetry:
    def __init__(
        self,
        seconds: float = DEFAULT_SECONDS,
        *,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.seconds = seconds
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter

    def run(self, decide: Callable[[], R]) -> R:
        """Runs ``decide`` until it commits without a conflict; past the deadline, the last
        conflict is a ``RaceLostError`` (409)."""
        deadline = self._clock.monotonic() + self.seconds
        losses = 0
        while True:
            try:
                return decide()
            except IntegrityError as conflict:
                losses += 1
                left = deadline - self._clock.monotonic()
                if left <= 0:
                    raise RaceLostError(losses, self.seconds) from conflict
                self._sleep(min(left, self.pause(losses)))

    def pause(self, losses: int) -> float:
        """Uniform between 0 and a ceiling that doubles with each loss, up to the maximum."""
        ceiling = min(MAX_PAUSE_SECONDS, FIRST_PAUSE_SECONDS * 2.0 ** min(losses - 1, 16))
        return ceiling * self._jitter()
