"""The live store held to its own write-time digests, and an export held to the live store
(``taskwarden audit check-store``, ``taskwarden audit verify FILE --against-store``).

The event store writes, with every transaction, the running digest of the log at its last
position (``infrastructure.audit_digests``). ``check_store`` chains the stored rows again from
``GENESIS`` and compares the chain with each recorded digest, in position order: the first digest
that differs is where a stored row is no longer what was digested when it was written (edited,
removed or inserted since), within the transaction that ended there (positions after the digest
before it, up to it). An event after the last digest was stored without one.

``compare_with_store`` holds the records of an export to the rows at the same positions, and,
for an export of the whole log (every team, from the first position: its hash at P is the
store's digest at P), each record's hash to the digest the store wrote at that position.

Neither check can tell a rewrite of every row and every digest since some position (someone with
write access to the database) from an honest log: a head noted earlier (``/api/audit/head``, an
export's signed head) can (docs/audit.md, "What the chain proves").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import Notification

from application.audit.chain import GENESIS, canonical, link, of
from application.store import Store

BATCH = 1000


@dataclass(frozen=True)
class Divergence:
    """The first position where the store is not what was digested or exported, and why."""

    position: int
    reason: str

    def __str__(self) -> str:
        return f"position {self.position}: {self.reason}"


def _stored(store: Store, after: int = 0, batch: int = BATCH) -> Iterator[Notification]:
    while found := store.notifications(after, batch):
        yield from found
        after = found[-1].id


def _recorded(store: Store, batch: int = BATCH) -> Iterator[tuple[int, str]]:
    after = 0
    while found := store.digests(after, batch):
        yield from found
        after = found[-1][0]


def check_store(store: Store, batch: int = BATCH) -> Divergence | None:
    """The first recorded digest that the stored rows no longer give, or the first event stored
    after the last digest; None if the whole log is as digested."""
    events = _stored(store, 0, batch)
    pending: Notification | None = next(events, None)
    digest, previous = GENESIS, 0
    for position, recorded in _recorded(store, batch):
        while pending is not None and pending.id <= position:
            digest = link(digest, canonical(of(pending)))
            pending = next(events, None)
        if digest != recorded:
            span = f"{previous + 1} to {position}" if previous + 1 < position else f"{position}"
            return Divergence(
                position,
                f"the stored events at positions {span} are not those digested when they "
                "were written (edited, removed or inserted since)",
            )
        previous = position
    if pending is not None:
        return Divergence(pending.id, "stored after the last digest: never digested")
    return None


def compare_with_store(
    store: Store, records: Iterable[dict[str, Any]], *, whole_log: bool, batch: int = BATCH
) -> Divergence | None:
    """The first record of an export (its fields as read from the file, ``hash`` included) that
    the live store does not hold as exported; with ``whole_log`` also the first stored event the
    export passed over and the first hash that differs from the store's digest there."""
    events: Iterator[Notification] | None = None
    pending: Notification | None = None
    digests = _recorded(store, batch)
    digest_at: tuple[int, str] | None = next(digests, None)
    for fields in records:
        position = fields.get("position")
        if not isinstance(position, int):
            return Divergence(0, "a record without a position")
        if events is None:
            events = _stored(store, 0 if whole_log else position - 1, batch)
            pending = next(events, None)
        while pending is not None and pending.id < position:
            if whole_log:
                return Divergence(pending.id, "in the store, not in the export")
            pending = next(events, None)
        if pending is None or pending.id != position:
            return Divergence(position, "in the export, not in the store")
        exported = {k: v for k, v in fields.items() if k != "hash"}
        if canonical(of(pending)) != canonical(exported):
            return Divergence(position, "the stored event differs from the exported record")
        pending = next(events, None)
        if not whole_log:
            continue
        while digest_at is not None and digest_at[0] < position:
            digest_at = next(digests, None)
        if (
            digest_at is not None
            and digest_at[0] == position
            and fields.get("hash") != digest_at[1]
        ):
            return Divergence(position, "the export's hash differs from the store's digest there")
    return None
