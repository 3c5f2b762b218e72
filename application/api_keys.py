"""Handlers for API keys: issue (the secret shown once, stored as a digest), list, revoke.

A team's keys are found through an event-sourced log (eventsourcing's ``EventSourcedLog``) whose
id is derived from the team: issuing a key appends ``ApiKeyIssued`` at the log's next version in
the same transaction as the key's ``Created``. Two concurrent issues race for the same version;
the loser retries. Listing reads the log and then each key, from the event store: no projection.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import EventSourcedLog
from eventsourcing.domain import DomainEvent

from application.auth import API_KEY_PREFIX, digest
from application.commands import CreateApiKey, RevokeApiKey, Targeted
from application.errors import NotFoundError
from application.results import Changed, Created
from application.store import Store
from domain.claim import claim_id
from domain.credentials import ApiKey
from domain.errors import RuleViolationError
from domain.project import Project
from domain.values import Actor, rfc3339


class ApiKeyIssued(DomainEvent):
    """On the team's key log: names a key, never its secret."""

    key_id: str


def key_log(store: Store, team_id: str) -> EventSourcedLog[ApiKeyIssued]:
    return store.event_log(claim_id(team_id, "log", "api-keys"), ApiKeyIssued)


def key_data(key: ApiKey) -> dict[str, Any]:
    return {
        "id": str(key.id),
        "prefix": key.prefix,
        "name": key.name,
        "role": key.role,
        "project_id": key.project_id,
        "created_by": key.created_by,
        "created_at": rfc3339(key.created_on),
        "expires_at": rfc3339(key.expires_at),
        "last_used_at": rfc3339(key.last_used_at),
        "revoked": key.revoked,
    }


def issue_api_key(store: Store, cmd: CreateApiKey, by: Actor) -> Created:
    """The answer carries the secret (``key``): the only time it is ever shown."""
    now = store.clock.now()
    expires_at = _expiry(cmd, now)
    project_id = None
    if cmd.project_id is not None:
        project_id = str(store.load_live(Project, cmd.project_id, by.team_id, "project").id)

    def decide() -> Created:
        key_id = uuid4()
        secret = f"{API_KEY_PREFIX}{key_id.hex}_{secrets.token_urlsafe(32)}"
        # the secret names the key, so its id is chosen first: eventsourcing's documented
        # constructor for a given id (ApiKey's own __init__ does not take one)
        key = ApiKey._create(
            ApiKey.Created,
            id=key_id,
            team_id=by.team_id,
            name=cmd.name,
            role=cmd.role,
            project_id=project_id,
            secret_hash=digest(secret),
            prefix=f"{API_KEY_PREFIX}{key_id.hex[:8]}",
            expires_at=expires_at,
            actor=by.id,
            request_id=by.request_id,
        )
        issued = key_log(store, by.team_id).trigger_event(key_id=str(key_id))
        position = store.commit(key, logged=[issued])
        return Created(data={**key_data(key), "key": secret}, position=position)

    return store.with_retries(decide)


def _expiry(cmd: CreateApiKey, now: datetime) -> datetime | None:
    if cmd.expires_at is not None and cmd.expires_in_days is not None:
        raise RuleViolationError("give expires_at or expires_in_days, not both")
    if cmd.expires_in_days is not None:
        return now + timedelta(days=cmd.expires_in_days)
    if cmd.expires_at is not None and cmd.expires_at <= now:
        raise RuleViolationError("expires_at must be in the future", field="expires_at")
    return cmd.expires_at


def list_api_keys(store: Store, team_id: str) -> dict[str, Any]:
    """The team's keys, newest first, revoked and expired ones included; never a secret."""
    logged = key_log(store, team_id).get(desc=True)
    keys = [store.load(ApiKey, UUID(e.key_id), team_id, "api_key") for e in logged]
    return {"items": [key_data(k) for k in keys], "total": len(keys)}


def revoke_api_key(store: Store, cmd: Targeted[RevokeApiKey], by: Actor) -> Changed:
    """A revoked key is refused from its next request on; revoking twice changes nothing."""
    try:
        key_id = UUID(cmd.target)
    except ValueError:
        raise NotFoundError("api_key", cmd.target) from None
    key = store.load(ApiKey, key_id, by.team_id, "api_key")
    key.revoke(by)
    return Changed(data=key_data(key), position=store.commit(key))
