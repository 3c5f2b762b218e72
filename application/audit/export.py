"""The audit export: the stored events in position order as JSON lines, each record with its
place in a hash chain, ending with a signed head (docs/audit.md, "The export").

The log is read in batches (``Store.notifications``) and written a batch at a time, so memory
stays bounded whatever the log's size, and the range is fixed when the export begins (up to the
log's position then, or ``to``): events committed meanwhile belong to the next export. A per-team
export keeps the events whose stored state names the team (``team_id``, which every event
carries: ``domain.place``) and chains only those; a partial export (``from``, ``to``) chains its
first record from ``GENESIS`` as a whole one does. The header line is outside the chain and
unsigned; the verifier holds it to the head, which is signed (``head``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from typing import Any, Final

import msgspec
from eventsourcing.persistence import Notification

from application.audit.chain import GENESIS, canonical, link, of
from application.audit.keys import Signer
from application.store import Store
from domain.values import rfc3339

FORMAT: Final = "taskwarden-audit/1"
BATCH: Final = 1000


class Scope(msgspec.Struct, frozen=True, kw_only=True):
    """Which events: one team's or every team's (None), positions ``first`` to ``last`` inclusive
    (None: from the start, up to the log's position when the export begins)."""

    team: str | None = None
    first: int | None = None
    last: int | None = None


class _Placed(msgspec.Struct):
    team_id: str | None = None


_placed = msgspec.json.Decoder(_Placed)


def team_of(state: bytes) -> str | None:
    """The ``team_id`` a stored event's state names, if it names one as text."""
    try:
        return _placed.decode(state).team_id
    except msgspec.DecodeError:  # ValidationError included; then as json reads it (NaN, ...)
        try:
            found = json.loads(state)
        except ValueError:
            return None
        team = found.get("team_id") if isinstance(found, dict) else None
        return team if isinstance(team, str) else None


def with_hash(canonical_record: bytes, digest: str) -> bytes:
    """``canonical(record | {"hash": digest})`` without encoding again: ``hash`` sorts before every
    key of a record (``chain.record``), so it is the first member."""
    return b'{"hash":"' + digest.encode("ascii") + b'",' + canonical_record[1:]


class _Chain:
    """The records written so far: how many, the last one's position, the hash after it."""

    def __init__(self) -> None:
        self.digest, self.count = GENESIS, 0
        self.position: int | None = None

    def lines(self, notifications: Sequence[Notification], team: str | None) -> list[bytes]:
        found = []
        for notification in notifications:
            if team is not None and team_of(notification.state) != team:
                continue
            record = canonical(of(notification))
            self.digest = link(self.digest, record)
            self.count, self.position = self.count + 1, notification.id
            found.append(with_hash(record, self.digest))
        return found


def export(store: Store, signer: Signer, scope: Scope, batch: int = BATCH) -> Iterator[bytes]:
    """The export as chunks of whole lines: the header, the records a batch at a time, the head."""
    last = store.max_position() if scope.last is None else min(scope.last, store.max_position())
    bounds = {"team": scope.team, "from": scope.first, "to": last}
    yield _line({"kind": "header", "format": FORMAT, **bounds})
    chain, after = _Chain(), max((scope.first or 1) - 1, 0)
    while after < last:
        notifications = store.notifications(after, batch)
        if not notifications:
            break
        after = notifications[-1].id
        lines = chain.lines([n for n in notifications if n.id <= last], scope.team)
        if lines:
            yield b"\n".join(lines) + b"\n"
    totals = {"count": chain.count, "last_position": chain.position, "hash": chain.digest}
    yield _line(head(signer, {**bounds, **totals, "exported_at": rfc3339(store.clock.now())}))


def head(signer: Signer, fields: dict[str, Any]) -> dict[str, Any]:
    """The signed head: ``signature`` is Ed25519 over the canonical form of every other field."""
    unsigned = {"kind": "head", "format": FORMAT, **fields, "key_id": signer.key_id}
    signature = signer.sign(canonical(unsigned))
    return {**unsigned, "signature": base64.b64encode(signature).decode("ascii")}


def _line(fields: dict[str, Any]) -> bytes:
    return canonical(fields) + b"\n"
