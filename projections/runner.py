"""Keeps the read model caught up with the ledger, in batches, on a daemon thread.

The committer pokes the runner after each commit; between pokes it polls. ``wait_for`` lets a
reader wait (bounded) until the read model has applied a position it was given by a write.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from projections.read_model import ReadModel

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 5.0


class ProjectionRunner:
    def __init__(
        self,
        ledger: Any,
        read_model: ReadModel,
        batch: int = 500,
        poll_interval: float = 0.05,
        coalesce: float = 0.005,
    ) -> None:
        self._ledger = ledger
        self._read_model = read_model
        self._batch = batch
        self._poll_interval = poll_interval
        # under a stream of commits, apply at most one batch per ``coalesce`` seconds, so that
        # each transaction carries many events; an idle runner still applies at once
        self._coalesce = coalesce
        self._position = 0
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[int], None]] = []

    @property
    def position(self) -> int:
        """The last position this runner saw applied (by itself or by another runner)."""
        return self._position

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="projection-runner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def poke(self, position: int) -> None:
        """Wake up now: the log has reached ``position``."""
        if position > self._position:
            self._wake.set()

    def catch_up(self) -> int:
        """Applies everything available, ``batch`` events per transaction; returns the position."""
        position = self._read_model.position()
        self._advance(position)
        while True:
            notifications = self._ledger.recorder.select_notifications(
                position, self._batch, inclusive_of_start=False
            )
            if not notifications:
                return position
            events = [(n.id, self._ledger.mapper.to_domain_event(n)) for n in notifications]
            position = self._read_model.apply(events)
            self._advance(position)
            if len(notifications) < self._batch:
                return position

    def wait_for(self, position: int, timeout: float) -> bool:
        """True once the read model has applied ``position``; False after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if self._position >= position:
                return True
            self._advance(self._read_model.position())  # another process may be applying
            remaining = deadline - time.monotonic()
            with self._changed:
                if self._changed.wait_for(
                    lambda: self._position >= position,
                    timeout=max(0.0, min(remaining, self._poll_interval * 4)),
                ):
                    return True
            if time.monotonic() >= deadline:
                return self._position >= position

    def on_advance(self, listener: Callable[[int], None]) -> None:
        """``listener(position)`` runs (on the runner's thread) each time the views move on."""
        self._listeners.append(listener)

    def _advance(self, position: int) -> None:
        with self._changed:
            if position <= self._position:
                return
            self._position = position
            self._changed.notify_all()
        for listener in self._listeners:
            try:
                listener(position)
            except Exception:  # noqa: BLE001 - a listener must not stop the views
                log.exception("projection listener failed")

    def _run(self) -> None:
        backoff = self._poll_interval
        last = 0.0
        while not self._stopping.is_set():
            pause = last + self._coalesce - time.monotonic()
            if pause > 0:
                self._stopping.wait(pause)
            last = time.monotonic()
            try:
                self.catch_up()
            except Exception:  # noqa: BLE001 - logged; the runner must outlive a bad moment
                log.exception("projection runner failed; retrying in %.2fs", backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            backoff = self._poll_interval
            self._wake.wait(self._poll_interval)
            self._wake.clear()
