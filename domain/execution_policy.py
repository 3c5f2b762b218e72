"""How one execution of a task runs and what follows its end: the options a request gives (time
limit, time to live in the queue, agent, retries and their backoff, review of finished work).

The task decides with them (``Task.end_execution``, ``Task.retry_if_allowed``); its
``ExecutionRequested`` event records them as a plain mapping (``recorded``), read back by ``of``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

MAX_BACKOFF_SECONDS = 300.0


@dataclass(frozen=True, kw_only=True)
class ExecutionPolicy:
    timeout: int = 3_600  # seconds the agent may run
    retry_attempts: int = 0  # automatic retries left after a failure or a timeout
    retry_backoff: float = 2.0  # seconds before the first retry; doubled each time
    queue_ttl: int | None = None  # seconds it may wait in the queue before it expires
    agent: str | None = None
    require_approval: bool = False  # finished work waits for a person instead of completing
    not_before: float | None = None  # a retry's backoff: not started before (epoch seconds)

    @classmethod
    def of(cls, recorded: Mapping[str, Any]) -> ExecutionPolicy:
        """The policy an event recorded; what it does not name takes its default."""
        names = {f.name for f in fields(cls)}
        given = {k: v for k, v in recorded.items() if k in names and v is not None}
        return cls(**given)

    def recorded(self) -> dict[str, Any]:
        """What the ``ExecutionRequested`` event stores (``not_before`` only on a retry)."""
        options = asdict(self)
        if self.not_before is None:
            del options["not_before"]
        return options

    def next_retry(self, now: float, attempt: int) -> ExecutionPolicy:
        """The policy of the automatic retry after ``attempt`` failed: one retry fewer, not
        started before an exponential backoff with jitter in its upper half (at most 5 minutes)."""
        ceiling = min(MAX_BACKOFF_SECONDS, self.retry_backoff * 2.0 ** max(0, attempt - 1))
        delay = ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security
        return replace(self, retry_attempts=self.retry_attempts - 1, not_before=now + delay)
