"""Writes the place fields into stored events written before events carried them (``domain.place``).

Such an event has no ``team_id``; the place fields it lacks are its aggregate's: read from the
aggregate's first event (which always named its team, and project and task where they apply) and
written into the stored state, in the event store's own table. Nothing else in the row changes:
not its position, topic, version or other fields (its class version neither: the upcasters of
its older version still run when it is read, and leave the fields written here as they are).

Run by ``taskwarden migrate`` (and the embedded ``serve``, which migrates first). It resumes after
the position it last reached (``tw_relay``, name ``migration:places``), so a second run reads only
what was written since (an event this version wrote is recognised by its class version without
being parsed), and rewrites only the events that lack a place field.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from eventsourcing.utils import resolve_topic

from application.ledger import Ledger

NAME = "migration:places"
BATCH = 1_000


class Positions(Protocol):
    def get(self, name: str) -> int | None: ...
    def set(self, name: str, position: int) -> None: ...


def migrate_places(ledger: Ledger, positions: Positions, batch: int = BATCH) -> int:
    """Rewrites the version-1 events that lack place fields; returns how many."""
    after = positions.get(NAME) or 0
    rewritten = 0
    while True:
        notifications = ledger.recorder.select_notifications(
            after, batch, inclusive_of_start=False
        )
        if not notifications:
            return rewritten
        updates = [
            (state, n.id) for n in notifications if (state := _placed(ledger, n)) is not None
        ]
        if updates:
            _write(ledger, updates)
            rewritten += len(updates)
        after = notifications[-1].id
        positions.set(NAME, after)


def _placed(ledger: Ledger, notification: Any) -> bytes | None:
    """The event's stored state with its place written in; None if it needs none. The stored
    state's top-level keys say what it carries (a plain JSON read: its values stay as stored);
    only an event that lacks a place field is decoded and encoded again."""
    cls = resolve_topic(notification.topic)
    if not hasattr(cls, "PLACE"):
        return None
    if bytes(notification.state).endswith(b'"class_version":%d}' % cls.class_version):
        return None  # written by this version (the mapper adds the version last): placed
    wanted = {*cls.PLACE, *({"item"} & cls.__dataclass_fields__.keys())}
    missing = wanted - json.loads(notification.state).keys()
    if not missing:
        return None
    transcoder = ledger.mapper.transcoder
    state: dict[str, Any] = transcoder.decode(notification.state)
    place = _place_of(ledger, notification.originator_id)
    state.update({name: place[name] for name in missing})
    return bytes(transcoder.encode(state))


def _place_of(ledger: Ledger, originator_id: Any) -> dict[str, Any]:
    """Read from the aggregate's first event: its place fields, and which kind of aggregate it
    is (``item``: the HITL items share their withdrawal event)."""
    [first] = ledger.recorder.select_events(originator_id, lte=1, limit=1)
    state = ledger.mapper.transcoder.decode(first.state)
    cls = resolve_topic(first.topic)
    place = {name: state.get(name) for name in cls.PLACE}
    place["item"] = cls.__qualname__.partition(".")[0].lower()
    return place


def _write(ledger: Ledger, updates: list[tuple[bytes, int]]) -> None:
    recorder: Any = ledger.recorder
    table = ledger.events_table
    if hasattr(recorder.datastore, "schema"):  # Postgres
        statement = f"UPDATE {table} SET state = %s WHERE notification_id = %s"  # noqa: S608
    else:
        statement = f"UPDATE {table} SET state = ? WHERE rowid = ?"  # noqa: S608
    with recorder.datastore.transaction(commit=True) as curs:
        curs.executemany(statement, updates)
