"""Handlers for users: create (admins, and the first admin on an empty store), read, list, update,
preferences.

A team's users are found through an event-sourced log (eventsourcing's ``EventSourcedLog``, as for
API keys) whose id is derived from the team: creating a user appends ``UserJoined`` at the log's
next version in the same transaction as the user's ``Created`` and the username claim. Users are
never removed (only disabled) and never change team, so the log's version is the team's user count
and the page ``n`` of a listing is a version range of the log: no projection, no scan.
"""

from __future__ import annotations

import math
import secrets
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.application import EventSourcedLog
from eventsourcing.domain import DomainEvent

from application.auth import USERNAMES, username_claim
from application.commands import CreateUser, SetPreferences, Targeted, UpdateUser, given
from application.listings import every_task
from application.ports import PasswordHasher
from application.results import Changed, Created
from application.store import Store, check_version
from domain.claim import SlugClaim, claim_id
from domain.errors import AlreadyExistsError, RuleViolationError
from domain.user import User
from domain.values import GRANTS, Actor, Role, rfc3339
from projections.read_model import ReadModel
from projections.rows import ProjectQuery, TaskQuery

BOOTSTRAP = Actor(id="system:bootstrap", team_id="default", request_id="bootstrap")
MAX_PREFERENCES_BYTES = 16_384
STATISTICS_PAGE = 100


class UserJoined(DomainEvent):
    """On the team's user log: one per user created in the team."""

    user_id: str


def user_log(store: Store, team_id: str) -> EventSourcedLog[UserJoined]:
    return store.event_log(claim_id(team_id, "log", "users"), UserJoined)


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
) -> Created:
    """Creates a user in ``team_id``; the username is unique across all teams."""
    password_hash = hasher.hash(cmd.password)  # slow on purpose: once, not on every retry

    def decide() -> Created:
        if store.find(SlugClaim, username_claim(cmd.username)) is not None:
            raise AlreadyExistsError(f"username {cmd.username!r} is taken", username=cmd.username)
        user = User(
            team_id=team_id,
            username=cmd.username,
            email=cmd.email,
            full_name=cmd.full_name,
            password_hash=password_hash,
            role=cmd.role,
            actor=by.id,
            request_id=by.request_id,
        )
        team, kind = USERNAMES
        claim = SlugClaim(team_id=team, kind=kind, slug=cmd.username.lower(), holder=str(user.id))
        joined = user_log(store, team_id).trigger_event(user_id=str(user.id))
        position = store.commit(user, claim, logged=[joined])
        return Created(data=user_data(user), position=position)

    return store.with_retries(decide)


def bootstrap_admin(store: Store, hasher: PasswordHasher, password: str | None) -> str | None:
    """On a store with no ``admin`` user, creates one in team ``default``.

    Returns the generated password when none was configured (to be printed once), else None.
    """
    if store.find(SlugClaim, username_claim("admin")) is not None:
        return None
    generated = None if password else secrets.token_urlsafe(18)
    command = CreateUser(username="admin", password=password or generated or "", role="admin")
    try:
        create_user(store, hasher, command, BOOTSTRAP.team_id, BOOTSTRAP)
    except AlreadyExistsError:  # another process bootstrapped first
        return None
    return generated


def load_user(store: Store, ref: str, team_id: str) -> User:
    """Another team's user and a missing one both answer USER_NOT_FOUND."""
    return store.load_ref(User, ref, team_id, "user")


def get_user(store: Store, ref: str, team_id: str) -> dict[str, Any]:
    return user_data(load_user(store, ref, team_id))


def list_users(
    store: Store, team_id: str, page: int, page_size: int, order: str = "asc"
) -> dict[str, Any]:
    """The team's users in the order they joined (``desc``: newest first), disabled included."""
    log = user_log(store, team_id)
    last = log.get_last()
    total = last.originator_version if last is not None else 0
    skip = (page - 1) * page_size
    logged: list[UserJoined] = []
    if skip < total and order == "desc":
        logged = list(log.get(gt=max(total - skip - page_size, 0), lte=total - skip, desc=True))
    elif skip < total:
        logged = list(log.get(gt=skip, lte=skip + page_size))
    users = [store.load(User, UUID(e.user_id), team_id, "user") for e in logged]
    pages = math.ceil(total / page_size) if total else 0
    return {
        "items": [user_data(u) for u in users],
        "total": total,
        "page": page,
        "page_size": page_size,
        "pages": pages,
        "has_next": page < pages,
        "has_previous": page > 1,
    }


def update_user(
    store: Store, hasher: PasswordHasher, cmd: Targeted[UpdateUser], by: Actor
) -> Changed:
    """Email, full name, role, disabled, password; an admin cannot disable or demote themself."""
    changes = given(cmd.command)
    password = changes.pop("password", None)
    password_hash = hasher.hash(password) if password is not None else None
    disabled = changes.pop("disabled", None)

    def decide() -> Changed:
        user = load_user(store, cmd.target, by.team_id)
        check_version(user, cmd.expected_version)
        user.update(changes, by)
        if disabled is True:
            user.disable(by)
        elif disabled is False:
            user.enable(by)
        if password_hash is not None:
            user.change_password(password_hash, by)
        return Changed(data=user_data(user), position=store.commit(user))

    return store.with_retries(decide)


def set_preferences(store: Store, cmd: Targeted[SetPreferences], by: Actor) -> Changed:
    """Replaces the user's preferences with a JSON object of at most 16 KiB."""
    preferences = cmd.command.preferences
    size = len(msgspec.json.encode(preferences))
    if size > MAX_PREFERENCES_BYTES:
        raise RuleViolationError(
            f"preferences over {MAX_PREFERENCES_BYTES} bytes", field="preferences", size=size
        )

    def decide() -> Changed:
        user = load_user(store, cmd.target, by.team_id)
        user.set_preferences(preferences, by)
        position = store.commit(user)
        data = {"preferences": dict(user.preferences), "updated_at": rfc3339(user.modified_on)}
        return Changed(data=data, position=position)

    return store.with_retries(decide)


def profile(store: Store, views: ReadModel, user_id: str, by: Actor) -> dict[str, Any]:
    """Seed 000's profile: the user, what their role grants, and what they have done."""
    user = load_user(store, user_id, by.team_id)
    return {
        **user_data(user),
        "permissions": sorted(p.value for p in GRANTS[Role(user.role)]),
        "statistics": user_statistics(views, by.team_id, by.id),
    }


def user_statistics(read_model: ReadModel, team_id: str, actor_id: str) -> dict[str, int]:
    """From the read model: live projects the user created; live tasks the user created, and
    how many of those are completed. The task view has no creator filter, so the team's tasks
    are paged through."""
    projects = read_model.list_projects(team_id, ProjectQuery(created_by=actor_id, page_size=1))
    created = completed = 0
    query = TaskQuery(sort="created_at", order="asc", page_size=STATISTICS_PAGE)
    for row in every_task(read_model, team_id, query):
        if row.created_by == actor_id:
            created += 1
            if row.status == "completed":
                completed += 1
    return {
        "tasks_created": created,
        "tasks_completed": completed,
        "projects_created": projects.total,
    }
