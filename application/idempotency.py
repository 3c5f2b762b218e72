"""``Idempotency-Key``: the same key and body give the same result and no second event."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec
from eventsourcing.domain import Aggregate

from application.errors import IdempotencyConflictError
from application.results import Created, Queued, Submitted
from application.store import Store
from domain.claim import IdempotencyRecord, claim_id

# what a command that honours a key may answer: each kind is rebuilt from the recorded data
R = TypeVar("R", Created, Queued, Submitted)
# the record's status field is no longer written: the interface answers each kind of result with
# its own status, for a replay as for the first answer (records written before keep theirs)
NO_STATUS = 0
# what a decision returns: the representation, the aggregates to save, and those it relies on
Decision = (
    tuple[dict[str, Any], list[Aggregate]]
    | tuple[dict[str, Any], list[Aggregate], Sequence[Aggregate]]
)


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
    kind: type[R],
    decide: Callable[[], Decision],
) -> R:
    """Runs ``decide`` (which returns the representation of what it wrote, the aggregates to
    save, and maybe the aggregates it read and relies on unchanged: ``Store.commit``) exactly
    once per key, and answers a ``kind`` of result.

    The record of the representation is committed in the same transaction as the change itself;
    a replay answers the same kind with the recorded representation.
    """

    def attempt() -> R:
        if idempotency is not None:
            previous = _previous(store, team_id, scope, idempotency.key)
            if previous is not None:
                if previous.fingerprint != idempotency.fingerprint:
                    raise IdempotencyConflictError(
                        "this Idempotency-Key was used with a different request"
                    )
                return kind(data=previous.body, position=store.max_position(), replayed=True)
        data, aggregates, *relied = decide()
        if idempotency is not None:
            aggregates.append(
                IdempotencyRecord(
                    team_id=team_id,
                    scope=scope,
                    key=idempotency.key,
                    fingerprint=idempotency.fingerprint,
                    status=NO_STATUS,
                    body=data,
                )
            )
        unchanged = relied[0] if relied else ()
        return kind(data=data, position=store.commit(*aggregates, unchanged=unchanged))

    return store.with_retries(attempt)


def _previous(store: Store, team_id: str, scope: str, key: str) -> IdempotencyRecord | None:
    return store.find(IdempotencyRecord, claim_id(team_id, f"idem:{scope}", key))
