"""Handlers for users: create (admins, and the first admin on an empty store)."""

from __future__ import annotations

import secrets
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from application.auth import USERNAMES, username_claim
from application.commands import CreateUser
from application.idempotency import Written
from application.ports import PasswordHasher
from application.store import Store
from domain.claim import SlugClaim
from domain.errors import AlreadyExistsError
from domain.user import User
from domain.values import Actor, Role, rfc3339

BOOTSTRAP = Actor(id="system:bootstrap", team_id="default", request_id="bootstrap")


def user_data(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "username": user.username,
        "email": user.email,
        "full_name": user.full_name,
        "role": user.role,
        "team_id": user.team_id,
        "disabled": user.disabled,
        "preferences": dict(user.preferences),
        "created_at": rfc3339(user.created_on),
        "last_login": rfc3339(user.last_login),
        "version": user.version,
    }


def create_user(
    store: Store, hasher: PasswordHasher, cmd: CreateUser, team_id: str, by: Actor
) -> Written:
    """Creates a user in ``team_id``; the username is unique across all teams."""

    def decide() -> Written:
        try:
            store.ledger.repository.get(username_claim(cmd.username))
        except AggregateNotFoundError:
            pass
        else:
            raise AlreadyExistsError(f"username {cmd.username!r} is taken", username=cmd.username)
        user = User(
            team_id=team_id,
            username=cmd.username,
            email=cmd.email,
            full_name=cmd.full_name,
            password_hash=hasher.hash(cmd.password),
            role=cmd.role,
            actor=by.id,
            request_id=by.request_id,
        )
        team, kind = USERNAMES
        claim = SlugClaim(team_id=team, kind=kind, slug=cmd.username.lower(), holder=str(user.id))
        position = store.commit(user, claim)
        return Written(data=user_data(user), position=position, status=201)

    return store.with_retries(decide)


def bootstrap_admin(store: Store, hasher: PasswordHasher, password: str | None) -> str | None:
    """On a store with no ``admin`` user, creates one in team ``default``.

    Returns the generated password when none was configured (to be printed once), else None.
    """
    try:
        store.ledger.repository.get(username_claim("admin"))
    except AggregateNotFoundError:
        pass
    else:
        return None
    generated = None if password else secrets.token_urlsafe(18)
    command = CreateUser(username="admin", password=password or generated or "", role=Role.ADMIN)
    try:
        create_user(store, hasher, command, BOOTSTRAP.team_id, BOOTSTRAP)
    except AlreadyExistsError:  # another process bootstrapped first
        return None
    return generated
