"""``Idempotency-Key``: the same key and body give the same answer and no second event."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import msgspec
from eventsourcing.domain import Aggregate

from application.errors import IdempotencyConflictError
from application.store import Store
from domain.claim import IdempotencyRecord, claim_id


class Written(msgspec.Struct, kw_only=True):
    """What a write answers: the representation, the HTTP status and the log position."""

    data: dict[str, Any]
    position: int
    status: int = 200
    replayed: bool = False


def fingerprint(scope: str, payload: Any) -> str:
    return hashlib.sha256(scope.encode() + b"\x00" + msgspec.json.encode(payload)).hexdigest()


class Idempotency(msgspec.Struct, frozen=True):
    key: str
    fingerprint: str


def write_once(
    store: Store,
    team_id: str,
    scope: str,
    idempotency: Idempotency | None,
    decide: Callable[[], tuple[dict[str, Any], int, list[Aggregate]]],
) -> Written:
    """Runs ``decide`` (which returns data, status and the aggregates to save) exactly once per key.

    The record of the answer is committed in the same transaction as the change itself.
    """

    def attempt() -> Written:
        if idempotency is not None:
            previous = _previous(store, team_id, scope, idempotency.key)
            if previous is not None:
                if previous.fingerprint != idempotency.fingerprint:
                    raise IdempotencyConflictError(
                        "this Idempotency-Key was used with a different request"
                    )
                return Written(
                    data=previous.body,
                    status=previous.status,
                    position=store.max_position(),
                    replayed=True,
                )
        data, status, aggregates = decide()
        if idempotency is not None:
            aggregates.append(
                IdempotencyRecord(
                    team_id=team_id,
                    scope=scope,
                    key=idempotency.key,
                    fingerprint=idempotency.fingerprint,
                    status=status,
                    body=data,
                )
            )
        position = store.commit(*aggregates)
        return Written(data=data, status=status, position=position)

    return store.with_retries(attempt)


def _previous(store: Store, team_id: str, scope: str, key: str) -> IdempotencyRecord | None:
    return store.find(IdempotencyRecord, claim_id(team_id, f"idem:{scope}", key))
