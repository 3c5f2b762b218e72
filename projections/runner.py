"""Keeps the read model caught up with the log (read through the Store), in batches, on a daemon
thread.

The committer pokes the runner after each commit; between pokes it polls. ``wait_for`` lets a
reader wait (bounded) until the read model has applied a position it was given by a write.

No single event can stop it (docs/operations.md, "Quarantine"). When a batch fails while the read
model can be written, the runner finds the event at fault (the events before it applied as a
batch, then the event alone), retries it with a backoff, and after ``max_attempts`` records it as
quarantined and moves the tracking position past it. An event that cannot even be decoded (a
topic or a state this version does not know) is such an event too. While the read model cannot
be written (an outage) it retries with a backoff and quarantines nothing. A retry request for a
quarantined position applies that event late (``ReadModel.apply_late``).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from application.consumer_state import QUARANTINE, ConsumerState
from application.handed import Handed
from projections.read_model import ReadModel

if TYPE_CHECKING:
    from eventsourcing.persistence import Recording

    from application.retry_requests import RetryRequests
    from application.store import Store

log = logging.getLogger(__name__)
NAME = "projections"
CATCH_UP_GROWTH = 10  # a catch-up's batches grow to 10 times the configured one (5,000 at 500)
ANALYZE_AFTER = 10_000  # events one catch-up applied, after which the planner is told (below)
Quarantine = Callable[[Any, Any, BaseException, int], None]  # notification, event, error, attempts
Decoded = list[tuple[Any, Any]]  # (notification, its event or the error decoding it raised)


class EventFailedError(Exception):
    """The views could not take one event (or it could not be decoded)."""

    def __init__(self, notification: Any, event: Any, error: BaseException) -> None:
        super().__init__(f"position {notification.id}: {error!r}")
        self.notification = notification
        self.event = event
        self.error = error


class _Undecodable:
    """Stands for the event of a notification that could not be decoded."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class ProjectionRunner:
    def __init__(
        self,
        store: Store,
        read_model: ReadModel,
        batch: int = 500,
        poll_interval: float = 0.05,
        coalesce: float = 0.005,
        *,
        state: ConsumerState | None = None,
        quarantine: Quarantine | None = None,
        retries: RetryRequests | None = None,
        analyze_after: int = ANALYZE_AFTER,
    ) -> None:
        self._store = store
        # a catch-up that applied this many events refreshes the read model's statistics: the
        # database's own refresh (autovacuum) comes a minute or more later, and until then its
        # planner reads a table it was told is empty (``ReadModel.refresh_statistics``)
        self._analyze_after = analyze_after
        self._read_model = read_model
        self._batch = batch
        # behind by more than a batch, each full batch doubles the next, up to this: fewer,
        # larger transactions on a rebuild or a long catch-up; a live runner stays at ``batch``
        self._max_batch = batch * CATCH_UP_GROWTH
        self._poll_interval = poll_interval
        # under a stream of commits, apply at most one batch per ``coalesce`` seconds, so that
        # each transaction carries many events; an idle runner still applies at once
        self._coalesce = coalesce
        self.state = state or ConsumerState(NAME, clock=store.clock)
        self._quarantine = quarantine  # None: an event at fault is retried for ever (tests)
        self._retries = retries
        self._position = 0
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[int], None]] = []
        self._reader: ThreadPoolExecutor | None = None  # reads the next batch ahead (catch_up)
        self._next: int | None = None  # where the last catch-up left the views (None: ask them)
        self._handed = Handed(self._max_batch)  # this process's commits (``hand``)

    @property
    def position(self) -> int:
        """The last position this runner saw applied (by itself or by another runner)."""
        return self._position

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self.state.running = True
        self._thread = threading.Thread(target=self._run, name="projection-runner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._reader is not None:
            self._reader.shutdown(wait=False, cancel_futures=True)
            self._reader = None
        self.state.running = False

    def poke(self, position: int) -> None:
        """Wake up now: the log has reached ``position``."""
        if position > self._position:
            self._wake.set()

    def hand(self, recordings: Sequence[Recording[Any]]) -> None:
        """A commit of this process (``Store.on_recorded``), its events as committed: the next
        catch-up applies them as they are when they follow on from where the views are, instead
        of reading them back from the store (a round trip and a decode per commit, about 0.4 ms
        of the lag between a commit and its rows; ``application/handed.py``)."""
        if recordings:
            self._handed.add(recordings)
            self.poke(recordings[-1].notification.id)

    def catch_up(self) -> int:
        """Applies everything available, ``batch`` events per transaction; returns the position.
        Raises while the read model or the store is unreachable.

        After a full batch, the next one is read and decoded on another thread while this one is
        applied, so that the database writes one batch while this process reads the next; it
        is used only if the batch before it was applied up to its end. Each full batch doubles
        the next one's size, up to ``CATCH_UP_GROWTH`` times ``batch``: far behind (a rebuild),
        the views are written in fewer, larger transactions."""
        # where this runner's last catch-up left the views (no read: the round trip was a part
        # of each commit's lag); the apply checks it against the stored position under its lock
        position = self._next if self._next is not None else self._read_model.position()
        started = position
        self._advance(position)
        ahead: tuple[int, Future[Decoded]] | None = None
        size = self._batch
        while not self._stopping.is_set():
            if ahead is not None and ahead[0] == position:
                decoded = ahead[1].result()
            else:
                decoded = self._handed.after(position, size) or self._read(position, size)
            ahead = None
            if not decoded:
                break
            full = len(decoded) == size
            if full:
                after = decoded[-1][0].id
                size = min(size * 2, self._max_batch)
                ahead = (after, self._reading_ahead().submit(self._read, after, size))
            try:
                applied = self._apply(decoded, after=position)
            except EventFailedError as failed:
                position = self._next = self._failed(failed)
                continue
            reset = applied < position  # the views were reset: read again from where they are
            position = self._next = applied
            self._advance(position)
            if not full and not reset:
                break
        if position - started >= self._analyze_after:
            self._refresh_statistics()
        return position

    def _refresh_statistics(self) -> None:
        try:
            self._read_model.refresh_statistics()
        except Exception:  # the views are applied: a planner left uninformed is not an outage
            log.exception("refreshing the read model's statistics failed")

    def _read(self, position: int, size: int) -> Decoded:
        """The next ``size`` events after ``position``, each notification with its event, or
        with the error its decoding raised (``_apply`` deals with it in order)."""
        decoded: Decoded = []
        for notification in self._store.notifications(position, size):
            try:
                decoded.append((notification, self._store.decode(notification)))
            except Exception as error:  # noqa: BLE001 - the event at fault, dealt with in order
                decoded.append((notification, _Undecodable(error)))
        return decoded

    def _reading_ahead(self) -> ThreadPoolExecutor:
        if self._reader is None:
            self._reader = ThreadPoolExecutor(1, thread_name_prefix="projection-reader")
        return self._reader

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
        self.state.passed(position)
        with self._changed:
            if position <= self._position:
                return
            self._position = position
            self._changed.notify_all()
        for listener in self._listeners:
            try:
                listener(position)
            except Exception:  # a listener must not stop the views
                log.exception("projection listener failed")

    # ---- an event at fault ---------------------------------------------------------------

    def _apply(self, decoded: Decoded, after: int) -> int:
        """Applies a batch ``_read`` decoded after ``after``; a notification that could not be
        decoded is at fault once the ones before it are applied."""
        pairs: list[tuple[Any, Any]] = []
        for notification, event in decoded:
            if isinstance(event, _Undecodable):
                self._isolating(pairs, after)
                raise EventFailedError(notification, None, event.error) from event.error
            pairs.append((notification, event))
        return self._isolating(pairs, after)

    def _isolating(self, pairs: list[tuple[Any, Any]], after: int | None = None) -> int:
        """Applies the batch; if it fails while the views can be written, applies halves of it
        until the one event at fault is alone (every event before it applied)."""
        if not pairs:
            return self._position
        try:
            return self._read_model.apply([(n.id, e) for n, e in pairs], after=after)
        except Exception as error:
            if len(pairs) == 1:
                raise EventFailedError(pairs[0][0], pairs[0][1], error) from error
            if not self._answers():
                raise
            middle = len(pairs) // 2
            self._advance(self._isolating(pairs[:middle], after))
            return self._isolating(pairs[middle:])

    def _answers(self) -> bool:
        """The read model can be written now: the failure was not an outage."""
        try:
            self._read_model.probe()
        except Exception:  # noqa: BLE001 - any failure means: not now
            return False
        return True

    def _failed(self, failed: EventFailedError) -> int:
        """Waits out the backoff, or quarantines the event and passes over it; returns the
        position to read after. An outage raises (``_run`` waits it out)."""
        position = failed.notification.id
        if not self._answers():
            raise failed.error  # an outage: counted (not towards quarantine) by ``_run``
        verdict = self.state.failed(position, failed.error, answers=True)
        log.warning("position %d failed (%d): %r", position, self.state.attempts, failed.error)
        if verdict == QUARANTINE and self._quarantine is not None:
            self._quarantine(failed.notification, failed.event, failed.error, self.state.attempts)
            self._read_model.skip(position)
            self.state.was_quarantined(position)
            self._advance(position)
            return position
        self.state.wait(self._stopping)
        return self._read_model.position()

    # ---- retries -------------------------------------------------------------------------

    def settle_retries(self) -> None:
        """Applies late the quarantined positions a retry was asked for."""
        if self._retries is None:
            return
        for entry in self._retries.take():
            self._retries.settle(
                entry, functools.partial(self._apply_late, entry.position), self._answers
            )

    def _apply_late(self, position: int) -> None:
        if position > self._read_model.position():
            return  # not reached yet (a rebuild): it is applied in order, or fails again then
        found = self._store.notification_at(position)
        if found is None:
            return
        self._read_model.apply_late(position, self._store.decode(found))

    # ---- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        last = 0.0
        while not self._stopping.is_set():
            pause = last + self._coalesce - time.monotonic()
            if pause > 0:
                self._stopping.wait(pause)
            last = time.monotonic()
            try:
                self.catch_up()
                self.state.succeeded()
                if self._retries is not None and self._retries.due():
                    self.settle_retries()
            except Exception as error:  # noqa: BLE001 - logged; the runner outlives an outage
                self._next = None  # read the stored position again
                self.state.failed(None, error, answers=False)
                log.warning("projection runner failed: %r; retrying", error)
                self.state.wait(self._stopping)
                continue
            self._wake.wait(self._poll_interval)
            self._wake.clear()
