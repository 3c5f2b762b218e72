"""The one ordered log read as its consumers read it (projections, the relay): by position,
after the last one seen, while the test breaks things; then the whole log once at the end.

A reader must never pass a position that is filled in later: that event would be skipped by
every consumer for ever. ``skipped()`` compares what the tail saw with the final log. Positions
are the event store's notification ids: contiguous on SQLite; on Postgres a transaction that
rolls back (a conflict, a connection cut by a crash) leaves its sequence numbers unused, which no
reader can tell from a skip by looking once, hence the tail."""

from __future__ import annotations

import threading
from typing import Any

from application.ledger import Ledger
from application.public_events import public_events
from infrastructure.event_store import ledger_env
from infrastructure.settings import Settings


class LogTail:
    def __init__(self, settings: Settings, interval: float = 0.05) -> None:
        self._ledger = Ledger(env=ledger_env(settings, create_tables=False))
        self._interval = interval
        self.seen: list[int] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-tail", daemon=True)

    def start(self) -> LogTail:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.seen += self._after(self.seen[-1] if self.seen else 0)
            except Exception:  # noqa: BLE001 - a store that is down is read again next turn
                self.errors += 1

    def _after(self, position: int) -> list[int]:
        found: list[int] = []
        while True:
            recorder: Any = self._ledger.recorder
            batch = recorder.select_notifications(position, 500, inclusive_of_start=False)
            found += [n.id for n in batch]
            if len(batch) < 500:
                return found
            position = batch[-1].id

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def whole(self) -> list[int]:
        """Every position in the log now, in order."""
        return self._after(0)

    def skipped(self, whole: list[int]) -> list[int]:
        """Positions of the final log the tail passed without seeing."""
        last = self.seen[-1] if self.seen else 0
        seen = set(self.seen)
        return [p for p in whole if p <= last and p not in seen]

    def close(self) -> None:
        self.stop()
        self._ledger.close()


def public_positions(settings: Settings, after: int = 0, team: str | None = None) -> list[int]:
    """The positions of the log's public events after ``after`` (of ``team``, or all): what the
    relay must publish and a webhook of ``*`` must receive."""
    ledger = Ledger(env=ledger_env(settings, create_tables=False))
    try:
        found: list[int] = []
        while True:
            events, last = public_events(ledger, after, 500)
            found += [e.position for e in events if team is None or e.team_id == team]
            if last == after:
                return found
            after = last
    finally:
        ledger.close()
