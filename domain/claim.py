"""Claims: aggregates whose id is derived from a key, so that a key can be taken only once.

Saving a new claim at version 1 fails if the key was ever claimed, which makes uniqueness part
of the same transaction as the change that needs it (slugs, idempotency keys).
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain.errors import AlreadyExistsError
from domain.place import Placed

_NAMESPACE = uuid5(NAMESPACE_URL, "https://taskwarden.dev/claims")


def claim_id(team_id: str, kind: str, key: str) -> UUID:
    return uuid5(_NAMESPACE, f"{team_id}\x1f{kind}\x1f{key}")


class SlugClaim(Placed):
    """A slug held by one object of a kind within a team."""

    @staticmethod
    def create_id(team_id: str, kind: str, slug: str, holder: str) -> UUID:
        return claim_id(team_id, f"slug:{kind}", slug)

    @event("Taken")
    def __init__(self, team_id: str, kind: str, slug: str, holder: str) -> None:
        self.team_id = team_id
        self.kind = kind
        self.slug = slug
        self.holder: str | None = holder

    def retake(self, holder: str) -> None:
        if self.holder is not None and self.holder != holder:
            raise AlreadyExistsError(f"slug {self.slug!r} is taken", slug=self.slug)
        if self.holder != holder:
            self._retaken(holder=holder)

    @event("Retaken")
    def _retaken(self, holder: str) -> None:
        self.holder = holder

    def release(self) -> None:
        if self.holder is not None:
            self._released()

    @event("Released")
    def _released(self) -> None:
        self.holder = None


class IdempotencyRecord(Placed):
    """The first answer given to a request carrying an ``Idempotency-Key``."""

    @staticmethod
    def create_id(
        team_id: str, scope: str, key: str, fingerprint: str, status: int, body: dict[str, Any]
    ) -> UUID:
        return claim_id(team_id, f"idem:{scope}", key)

    @event("Recorded")
    def __init__(
        self,
        team_id: str,
        scope: str,
        key: str,
        fingerprint: str,
        status: int,
        body: dict[str, Any],
    ) -> None:
        self.team_id = team_id
        self.scope = scope
        self.key = key
        self.fingerprint = fingerprint
        self.status = status
        self.body = body
