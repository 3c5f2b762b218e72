"""This process's commits as committed, handed to a consumer of the log that runs beside them
(the projection runner, the budget watch, the relay) so that it need not read them back from
the store.

The committer hands each batch after its commit (``Store.on_recorded``), in log order. The
consumer takes what follows on from its position without a gap; anything else (another process
wrote in between, a rolled-back insert left a hole in the positions, the consumer fell too far
behind and the copy was dropped) it reads from the store as before. Taking is an optimisation,
never a second source of truth: what is taken is what the store holds at those positions.

Nothing is kept until the consumer first asks (``after``): a process that never runs a consumer
(``TASKWARDEN_RUN_PROJECTIONS=0`` for the runner and the budget watch, a relay of its own
elsewhere) keeps no copies for it at all.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Notification, Recording

Pair = tuple[Notification, Any]  # a stored event and its domain event


class Handed:
    def __init__(self, bound: int) -> None:
        self._bound = bound  # more waiting than this: the consumer is far behind, drop them
        self._pairs: deque[Pair] = deque()
        self._lock = threading.Lock()
        self._taking = False  # the consumer has asked: it runs

    def add(self, recordings: Sequence[Recording[Any]]) -> None:
        if not self._taking:
            return
        with self._lock:
            self._pairs.extend((r.notification, r.domain_event) for r in recordings)
            if len(self._pairs) > self._bound:
                self._pairs.clear()

    def after(self, position: int, limit: int) -> list[Pair] | None:
        """The handed events at ``position + 1`` on, without a gap, at most ``limit``, taken;
        None if the event at ``position + 1`` was not handed (read it from the store)."""
        self._taking = True
        with self._lock:
            pairs = self._pairs
            while pairs and pairs[0][0].id <= position:
                pairs.popleft()  # passed already (read from the store)
            taken: list[Pair] = []
            while pairs and len(taken) < limit and pairs[0][0].id == position + 1:
                taken.append(pairs.popleft())
                position += 1
            return taken or None
