"""API keys through a real Store (in memory; racing issuers on SQLite and Postgres): the team's key
log, authentication, and the project scope that a scoped key narrows the store to."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from application.api_keys import issue_api_key, key_log, list_api_keys, revoke_api_key
from application.auth import authenticate
from application.commands import CreateApiKey, CreateProject, CreateTask, RevokeApiKey, Targeted
from application.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from application.projects import create_project
from application.store import Store, narrow_to_project
from application.tasks import create_task
from domain.project import Project
from domain.task import Task
from domain.values import Actor
from infrastructure.settings import Settings
from infrastructure.tokens import JwtCodec
from tests.clock import ManualClock
from tests.stores import on_databases, open_store

ALICE = Actor(id="alice", team_id="team-a", request_id="req-alice")
BOB = Actor(id="bob", team_id="team-b", request_id="req-bob")
CODEC = JwtCodec(b"k" * 32)
ISSUERS = 8


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(event_store: dict[str, Any], tmp_path: Path, clock: ManualClock) -> Iterator[Store]:
    store = open_store(Settings(data_dir=tmp_path, **event_store), clock=clock)
    yield store
    store.close()


def issue(store: Store, by: Actor = ALICE, **fields: object) -> dict[str, object]:
    return issue_api_key(store, CreateApiKey(name="ci", **fields), by).data  # type: ignore[arg-type]


@on_databases
def test_concurrent_issues_all_land_in_the_teams_key_log(store):
    """Issuers racing on the team's key log: each loss is decided again, so all land."""
    issued: list[str] = []

    def one() -> None:
        issued.append(str(issue(store)["id"]))

    threads = [threading.Thread(target=one) for _ in range(ISSUERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(issued) == ISSUERS
    assert sorted(k["id"] for k in list_api_keys(store, "team-a")["items"]) == sorted(issued)
    versions = [e.originator_version for e in key_log(store, "team-a").get()]
    assert versions == list(range(1, ISSUERS + 1))  # one entry per key, no gaps


def test_each_team_lists_its_own_keys_only(store):
    mine, theirs = issue(store), issue(store, BOB)
    assert [k["id"] for k in list_api_keys(store, "team-a")["items"]] == [mine["id"]]
    assert [k["id"] for k in list_api_keys(store, "team-b")["items"]] == [theirs["id"]]
    with pytest.raises(NotFoundError):
        revoke_api_key(store, Targeted(target=str(theirs["id"]), command=RevokeApiKey()), ALICE)


def test_a_key_authenticates_as_its_team_role_and_project_until_revoked(store):
    project = create_project(store, CreateProject(name="Web"), ALICE).data
    created = issue(store, role="operator", project_id=project["id"])
    principal = authenticate(store, CODEC, str(created["key"]))
    assert (principal.team_id, principal.role, principal.project_id) == (
        "team-a",
        "operator",
        project["id"],
    )
    assert principal.actor_id == f"key:{created['id']}" and principal.kind == "api_key"
    revoke_api_key(store, Targeted(target=str(created["id"]), command=RevokeApiKey()), ALICE)
    with pytest.raises(AuthenticationError, match="revoked"):
        authenticate(store, CODEC, str(created["key"]))


def test_a_key_past_its_expiry_is_refused(store, clock):
    command = CreateApiKey(name="old", expires_in_days=2)
    old = issue_api_key(store, command, ALICE).data
    clock.advance(timedelta(days=2).total_seconds() - 1)
    assert authenticate(store, CODEC, old["key"]).kind == "api_key"
    clock.advance(1)
    with pytest.raises(AuthenticationError, match="expired"):
        authenticate(store, CODEC, old["key"])


def test_use_is_recorded_at_most_once_a_minute(store, clock):
    created = issue(store)
    for _ in range(3):
        authenticate(store, CODEC, str(created["key"]))
        clock.advance(20)
    events = store.events_of(UUID(str(created["id"])), "team-a")
    assert [type(e).__qualname__ for e in events] == ["ApiKey.Created", "ApiKey.Used"]
    clock.advance(1)  # 61 s after the first use
    authenticate(store, CODEC, str(created["key"]))
    events = store.events_of(UUID(str(created["id"])), "team-a")
    assert [type(e).__qualname__ for e in events][-1] == "ApiKey.Used" and len(events) == 3


def test_a_store_narrowed_to_a_project_sees_only_it_and_its_tasks(store):
    ours = create_project(store, CreateProject(name="Ours"), ALICE).data["id"]
    other = create_project(store, CreateProject(name="Other"), ALICE).data["id"]
    our_task = create_task(store, CreateTask(title="a", project_id=ours), ALICE).data["id"]
    other_task = create_task(store, CreateTask(title="b", project_id=other), ALICE).data["id"]

    def narrowed() -> None:
        narrow_to_project(ours)
        assert str(store.load_live(Task, our_task, "team-a", "task").id) == our_task
        assert str(store.load_live(Project, ours, "team-a", "project").id) == ours
        for cls, ref, kind in ((Task, other_task, "task"), (Project, other, "project")):
            with pytest.raises(NotFoundError):
                store.load_live(cls, ref, "team-a", kind)
        with pytest.raises(PermissionDeniedError):
            create_project(store, CreateProject(name="Escape"), ALICE)
        with pytest.raises(NotFoundError):
            create_task(store, CreateTask(title="c", project_id=other), ALICE)

    contextvars.copy_context().run(narrowed)
    # the narrowing stayed in its context: here the whole team is visible again
    assert str(store.load_live(Task, other_task, "team-a", "task").id) == other_task
