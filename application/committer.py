"""Group commit: concurrent commands are written together in one transaction.

eventsourcing writes one ``save()`` under an exclusive table lock, so throughput grows with
events per transaction, not with writers. One thread drains whatever commands are waiting and
saves them as one batch; if the batch conflicts, each command is saved alone so that only the
conflicting one fails.

A caller waits ``wait`` seconds at most (TASKWARDEN_DATABASE_TIMEOUT_SECONDS): a commit stuck
behind a store that does not answer must not hold requests, and through them clients, longer than
that. A command still queued when its caller gives up is taken back and never written; one
already being saved may still land, which the caller is told.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, OperationalError, Recording

from application.ledger import Ledger

_STOP = object()
Item = tuple[list[Any], Future[list[Recording[Any]]], dict[UUID, int]]
log = logging.getLogger("taskwarden.committer")


class CommitterClosedError(RuntimeError):
    """A commit after ``close()``: nothing is written."""


class CommitTimeoutError(OperationalError):
    """The store did not take or finish a commit within the caller's wait: 503, as when it is
    down. ``written`` is False when the commit was taken back, None when it may still land."""

    def __init__(self, message: str, written: bool | None) -> None:
        super().__init__(message)
        self.written = written


class Committer:
    def __init__(self, ledger: Ledger, max_batch: int = 100, wait: float | None = None) -> None:
        self._ledger = ledger
        self._max_batch = max_batch
        self._wait = wait
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._listeners: list[Callable[[int], None]] = []
        self._recorded: list[Callable[[list[Recording[Any]]], None]] = []
        self._closed = threading.Event()
        self._gate = threading.Lock()  # no item can be queued behind the stop marker
        self._thread = threading.Thread(target=self._run, name="committer", daemon=True)
        self._thread.start()

    def on_commit(self, listener: Callable[[int], None]) -> None:
        """``listener(position)`` runs after each committed batch (wakes in-process readers)."""
        self._listeners.append(listener)

    def on_recorded(self, listener: Callable[[list[Recording[Any]]], None]) -> None:
        """``listener(recordings)`` runs after each committed batch, before the ``on_commit``
        listeners, with the batch's events and their stored notifications, in log order: an
        in-process consumer can take them instead of reading them back from the store."""
        self._recorded.append(listener)

    def commit(
        self, events: Sequence[Any], unchanged: Mapping[UUID, int] | None = None
    ) -> list[Recording[Any]]:
        """Writes ``events`` (with other callers' in one transaction), if the aggregates in
        ``unchanged`` are still at those versions (``infrastructure/unchanged.py``)."""
        if not events:
            return []
        future = self._queued(events, unchanged)
        try:
            return future.result(timeout=self._wait)
        except TimeoutError:
            self._give_up(future)
            raise  # not reached: _give_up raises

    async def commit_soon(
        self, events: Sequence[Any], unchanged: Mapping[UUID, int] | None = None
    ) -> list[Recording[Any]]:
        """``commit`` for a caller on an event loop: the same batches and the same bound, and no
        thread held while the batch is written."""
        if not events:
            return []
        future = self._queued(events, unchanged)
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self._wait)
        except TimeoutError:
            self._give_up(future)
            raise  # not reached: _give_up raises

    def _queued(
        self, events: Sequence[Any], unchanged: Mapping[UUID, int] | None
    ) -> Future[list[Recording[Any]]]:
        future: Future[list[Recording[Any]]] = Future()
        with self._gate:
            if self._closed.is_set():
                raise CommitterClosedError("the committer is closed: the service is stopping")
            self._queue.put((list(events), future, dict(unchanged or {})))
        return future

    def _give_up(self, future: Future[list[Recording[Any]]]) -> None:
        if future.cancel():  # still queued: the writer will skip it
            message = f"the event store took no commit for {self._wait:g} s; nothing written"
            raise CommitTimeoutError(message, written=False) from None
        message = f"the commit did not finish within {self._wait:g} s; it may still land"
        raise CommitTimeoutError(message, written=None) from None

    def close(self) -> None:
        """Writes what was queued before, then refuses: a late caller (a background thread
        finishing during shutdown) gets an error, never a wait for ever."""
        with self._gate:
            self._closed.set()
            self._queue.put(_STOP)
        self._thread.join(timeout=5)
        self._refuse_the_rest()

    def _refuse_the_rest(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP and item[1].set_running_or_notify_cancel():
                item[1].set_exception(CommitterClosedError("the committer closed first"))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item] if item[1].set_running_or_notify_cancel() else []
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._queue.put(_STOP)
                    break
                if more[1].set_running_or_notify_cancel():  # else its caller gave up: skip it
                    batch.append(more)
            if batch:
                self._write(batch)

    def _write(self, batch: list[Item]) -> None:
        relied = _relied(batch)
        if len(batch) > 1 and relied is not None:
            try:
                recordings = self._ledger.save(
                    *[e for events, _, _ in batch for e in events], **_guarded(relied)
                )
            except IntegrityError:
                pass  # someone in the batch conflicts: fall through and write each alone
            except Exception as error:  # noqa: BLE001 - handed to every waiting caller
                for _, future, _ in batch:
                    future.set_exception(error)
                return
            else:
                start = 0
                for events, future, _ in batch:
                    future.set_result(recordings[start : start + len(events)])
                    start += len(events)
                self._notify(recordings)
                return
        for events, future, unchanged in batch:
            try:
                recordings = self._ledger.save(*events, **_guarded(unchanged))
            except Exception as error:  # noqa: BLE001 - handed to the waiting caller
                future.set_exception(error)
            else:
                future.set_result(recordings)
                self._notify(recordings)

    def _notify(self, recordings: list[Recording[Any]]) -> None:
        if not recordings:
            return
        for taker in self._recorded:
            try:
                taker(recordings)
            except Exception:  # a listener's failure must never stop the writes
                log.exception("commit listener failed")
        position = max(r.notification.id for r in recordings)
        for listener in self._listeners:
            try:
                listener(position)
            except Exception:  # a listener's failure must never stop the writes
                log.exception("commit listener failed")


def _relied(batch: list[Item]) -> dict[UUID, int] | None:
    """The versions every command of the batch relies on; None if two disagree (each is then
    written alone, so that only the stale one fails)."""
    relied: dict[UUID, int] = {}
    for _, _, unchanged in batch:
        for key, version in unchanged.items():
            if relied.setdefault(key, version) != version:
                return None
    return relied


def _guarded(relied: dict[UUID, int]) -> dict[str, Any]:
    return {"unchanged": relied} if relied else {}
