"""Slugs unique within a team, enforced by claims written in the same transaction."""

from __future__ import annotations

from uuid import UUID

from application.store import Store
from domain.claim import SlugClaim, claim_id
from domain.errors import RuleViolationError


def take(store: Store, team_id: str, kind: str, slug: str, holder: UUID) -> SlugClaim:
    """Returns the claim to commit along with the holder's change; raises if the slug is taken."""
    try:
        UUID(slug)
    except ValueError:
        pass
    else:
        raise RuleViolationError("a slug may not look like an id", slug=slug)
    claim = store.find(SlugClaim, claim_id(team_id, f"slug:{kind}", slug))
    if claim is None:
        return SlugClaim(team_id=team_id, kind=kind, slug=slug, holder=str(holder))
    claim.retake(str(holder))
    return claim


def release(store: Store, team_id: str, kind: str, slug: str) -> SlugClaim | None:
    claim = store.find(SlugClaim, claim_id(team_id, f"slug:{kind}", slug))
    if claim is None:
        return None
    claim.release()
    return claim


def move(
    store: Store, team_id: str, kind: str, old: str | None, new: str | None, holder: UUID
) -> list[SlugClaim]:
    """The claims to save when an object's slug changes from ``old`` to ``new`` (either None)."""
    claims: list[SlugClaim] = []
    if old == new:
        return claims
    if old:
        released = release(store, team_id, kind, old)
        claims += [released] if released else []
    if new:
        claims.append(take(store, team_id, kind, new, holder))
    return claims
