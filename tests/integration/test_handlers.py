"""The command handlers through a real Store: in memory, and on SQLite and on Postgres alike
where only a database shows it (tests/stores.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID, uuid4

import msgspec
import pytest

from application.commands import (
    ApproveWork,
    CancelTask,
    CloneProject,
    CreateProject,
    CreateTask,
    DeleteProject,
    DeleteTask,
    ExecuteTask,
    RejectWork,
    RetryTask,
    SubmitTask,
    Targeted,
    UpdateProject,
    UpdateTask,
)
from application.errors import IdempotencyConflictError, NotFoundError, VersionConflictError
from application.executions import (
    approve_work,
    cancel_task,
    reject_work,
    retry_task,
)
from application.history import task_as_of, task_history
from application.idempotency import Idempotency, fingerprint
from application.projects import clone_project, create_project, delete_project, update_project
from application.results import Created, Queued, Submitted
from application.store import Store
from application.tasks import create_task, delete_task, submit_task, update_task
from domain.errors import (
    AlreadyExistsError,
    DependencyCycleError,
    DependencyNotMetError,
    InvalidTransitionError,
    ProjectArchivedError,
    RuleViolationError,
    TaskAlreadyRunningError,
)
from domain.project import Project
from domain.task import Task
from domain.values import Actor, TaskStatus
from infrastructure.settings import Settings
from tests.builders import NOTHING_SPENT, execute_task
from tests.stores import on_databases, on_every_store, open_store

ALICE = Actor(id="alice", team_id="team-a", request_id="req-alice")
ANNA = Actor(id="anna", team_id="team-a", request_id="req-anna")
BOB = Actor(id="bob", team_id="team-b", request_id="req-bob")
RUNNER = Actor(id="worker-1", team_id="team-a", request_id="req-runner")
C = TypeVar("C")


@pytest.fixture
def settings(event_store: dict[str, Any], tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, **event_store)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = open_store(settings)
    yield store
    store.close()


# ---- helpers -------------------------------------------------------------------------------


def new_project(store: Store, by: Actor = ALICE, **fields: Any) -> dict[str, Any]:
    fields.setdefault("name", "Website")
    return create_project(store, CreateProject(**fields), by).data


def new_task(store: Store, project: str, by: Actor = ALICE, **fields: Any) -> dict[str, Any]:
    fields.setdefault("title", "Fix the login bug")
    return create_task(store, CreateTask(project_id=project, **fields), by).data


def load_task(store: Store, ref: str, by: Actor = ALICE) -> Task:
    return store.load_live(Task, ref, by.team_id, "task")


def run_and_review(store: Store, ref: str) -> None:
    """What the runner (a later capability) records: start, then ask for review."""
    task = load_task(store, ref)
    task.start_execution(str(task.execution_id), "worker-1", RUNNER, at=store.clock.now())
    task.request_review("ready to test", RUNNER)
    store.commit(task)


def complete(store: Store, ref: str) -> None:
    update_task(store, on(ref, UpdateTask(status="completed")), ALICE)


def on(ref: str, command: C, version: int | None = None) -> Targeted[C]:
    return Targeted(target=ref, command=command, expected_version=version)


def keyed(scope: str, command: Any, key: str = "key-1") -> Idempotency:
    return Idempotency(key=key, fingerprint=fingerprint(scope, msgspec.to_builtins(command)))


def tasks_in(store: Store, project_id: str) -> list[Task]:
    """Every task of a project, found by reading the whole log (no projection needed)."""
    ids = {
        n.originator_id for n in store.notifications(0, 10_000) if n.topic.endswith("Task.Created")
    }
    found = [store.get(Task, i) for i in ids]
    return sorted((t for t in found if t.project_id == project_id), key=lambda t: t.created_on)


# ---- slugs ---------------------------------------------------------------------------------


def test_a_project_slug_is_unique_within_a_team(store: Store) -> None:
    new_project(store, slug="web")
    with pytest.raises(AlreadyExistsError) as raised:
        new_project(store, by=ANNA, slug="web")
    assert raised.value.code == "RESOURCE_ALREADY_EXISTS"


def test_another_team_may_reuse_a_slug(store: Store) -> None:
    ours = new_project(store, slug="web")
    theirs = new_project(store, by=BOB, slug="web")
    assert ours["id"] != theirs["id"]
    assert str(store.resolve("web", ALICE.team_id, "project")) == ours["id"]
    assert str(store.resolve("web", BOB.team_id, "project")) == theirs["id"]
    task_a = new_task(store, "web", slug="login")
    task_b = new_task(store, "web", by=BOB, slug="login")
    assert load_task(store, "login").id == UUID(task_a["id"])
    assert load_task(store, "login", BOB).id == UUID(task_b["id"])


def test_a_task_slug_is_unique_within_a_team(store: Store) -> None:
    project = new_project(store)["id"]
    new_task(store, project, slug="login")
    before = store.max_position()
    with pytest.raises(AlreadyExistsError):
        new_task(store, project, slug="login")
    assert store.max_position() == before


def test_a_slug_released_by_a_deleted_task_can_be_retaken(store: Store) -> None:
    project = new_project(store)["id"]
    first = new_task(store, project, slug="login")
    delete_task(store, on("login", DeleteTask(reason="dup")), ALICE)
    with pytest.raises(NotFoundError):
        store.resolve("login", ALICE.team_id, "task")
    second = new_task(store, project, slug="login")
    assert second["id"] != first["id"]
    assert load_task(store, "login").id == UUID(second["id"])


def test_a_slug_released_by_a_rename_can_be_retaken(store: Store) -> None:
    project = new_project(store, slug="web")
    update_project(store, on("web", UpdateProject(slug="site")), ALICE)
    assert str(store.resolve("site", ALICE.team_id, "project")) == project["id"]
    other = new_project(store, slug="web")
    assert str(store.resolve("web", ALICE.team_id, "project")) == other["id"]
    with pytest.raises(AlreadyExistsError):
        update_project(store, on("web", UpdateProject(slug="site")), ALICE)


def test_a_task_renamed_back_takes_its_own_released_slug_again(store: Store) -> None:
    project = new_project(store)["id"]
    task = new_task(store, project, slug="login")
    update_task(store, on("login", UpdateTask(slug="signin")), ALICE)
    update_task(store, on("signin", UpdateTask(slug="login")), ALICE)
    assert load_task(store, "login").id == UUID(task["id"])
    with pytest.raises(NotFoundError):
        load_task(store, "signin")


def test_a_task_is_found_by_its_id_or_its_slug_and_a_project_by_its_slug(store: Store) -> None:
    new_project(store, slug="web")
    task = new_task(store, "web", slug="login")
    assert task["project_id"] == str(store.resolve("web", ALICE.team_id, "project"))
    assert load_task(store, task["id"]).slug == "login"
    assert str(load_task(store, "login").id) == task["id"]
    with pytest.raises(NotFoundError) as raised:
        load_task(store, "no-such-slug")
    assert raised.value.code == "TASK_NOT_FOUND"


def test_a_slug_may_not_look_like_an_id(store: Store) -> None:
    project = new_project(store)["id"]
    with pytest.raises(RuleViolationError):
        new_task(store, project, slug=str(uuid4()))


@on_databases
def test_two_concurrent_creations_with_one_slug_give_it_to_one(store: Store) -> None:
    project = new_project(store)["id"]
    outcomes: list[Any] = []
    start = threading.Barrier(4)

    def create() -> None:
        start.wait()
        try:
            outcomes.append(new_task(store, project, slug="race")["id"])
        except AlreadyExistsError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [o for o in outcomes if isinstance(o, str)]
    assert len(outcomes) == 4 and len(winners) == 1
    assert str(load_task(store, "race").id) == winners[0]


# ---- idempotency ---------------------------------------------------------------------------


def test_the_same_key_and_body_give_the_same_answer_and_no_new_event(store: Store) -> None:
    project = new_project(store)["id"]
    cmd = CreateTask(project_id=project, title="Once", slug="once")
    first = create_task(store, cmd, ALICE, keyed("create_task", cmd))
    position = store.max_position()
    again = create_task(store, cmd, ALICE, keyed("create_task", cmd))
    assert isinstance(again, Created) and again.data == first.data
    assert again.replayed and not first.replayed
    assert store.max_position() == position


def test_the_same_key_with_another_body_is_a_conflict(store: Store) -> None:
    project = new_project(store)["id"]
    cmd = CreateTask(project_id=project, title="Once")
    create_task(store, cmd, ALICE, keyed("create_task", cmd))
    position = store.max_position()
    other = CreateTask(project_id=project, title="Twice")
    with pytest.raises(IdempotencyConflictError):
        create_task(store, other, ALICE, keyed("create_task", other))
    assert store.max_position() == position


def test_an_idempotency_key_belongs_to_one_team(store: Store) -> None:
    ours = new_project(store)["id"]
    theirs = new_project(store, by=BOB)["id"]
    a = CreateTask(project_id=ours, title="Same")
    b = CreateTask(project_id=theirs, title="Same")
    first = create_task(store, a, ALICE, keyed("create_task", a))
    second = create_task(store, b, BOB, keyed("create_task", b))
    assert not second.replayed and second.data["id"] != first.data["id"]


def test_an_execution_with_a_repeated_key_queues_one_attempt(store: Store) -> None:
    project = new_project(store)["id"]
    task = new_task(store, project)["id"]
    cmd = ExecuteTask(priority="high")
    first = execute_task(store, task, cmd, ALICE, keyed(f"execute_task:{task}", cmd))
    position = store.max_position()
    again = execute_task(store, task, cmd, ALICE, keyed(f"execute_task:{task}", cmd))
    assert isinstance(again, Queued) and again.data == first.data
    assert store.max_position() == position
    assert load_task(store, task).attempt == 1


@on_databases
def test_concurrent_requests_with_one_key_create_one_task(store: Store) -> None:
    project = new_project(store)["id"]
    cmd = CreateTask(project_id=project, title="Racing")
    answers: list[Created] = []
    start = threading.Barrier(4)

    def create() -> None:
        start.wait()
        answers.append(create_task(store, cmd, ALICE, keyed("create_task", cmd, "race")))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(answers) == 4
    assert len({a.data["id"] for a in answers}) == 1
    assert len(tasks_in(store, project)) == 1


# ---- If-Match versions ---------------------------------------------------------------------


def test_an_update_at_a_stale_version_is_a_conflict(store: Store) -> None:
    project = new_project(store)["id"]
    task = new_task(store, project)
    update_task(store, on(task["id"], UpdateTask(title="Second"), task["version"]), ALICE)
    with pytest.raises(VersionConflictError) as raised:
        update_task(store, on(task["id"], UpdateTask(title="Third"), task["version"]), ANNA)
    assert (raised.value.expected, raised.value.actual) == (task["version"], task["version"] + 1)
    assert load_task(store, task["id"]).title == "Second"


def test_a_delete_at_a_stale_version_is_a_conflict(store: Store) -> None:
    project = new_project(store)["id"]
    task = new_task(store, project)
    update_task(store, on(task["id"], UpdateTask(title="Second")), ALICE)
    with pytest.raises(VersionConflictError):
        delete_task(store, on(task["id"], DeleteTask(), task["version"]), ALICE)
    delete_task(store, on(task["id"], DeleteTask(), task["version"] + 1), ALICE)


def test_a_project_update_at_a_stale_version_is_a_conflict(store: Store) -> None:
    project = new_project(store)
    with pytest.raises(VersionConflictError):
        update_project(store, on(project["id"], UpdateProject(name="X"), 7), ALICE)
    with pytest.raises(VersionConflictError):
        delete_project(store, on(project["id"], DeleteProject(), 7), ALICE)
    answer = update_project(store, on(project["id"], UpdateProject(name="X"), 1), ALICE)
    assert answer.data["version"] == 2 and answer.data["name"] == "X"


# ---- teams ---------------------------------------------------------------------------------

AS_ANOTHER_TEAM: dict[str, Callable[[Store, str], Any]] = {
    "update": lambda s, ref: update_task(s, on(ref, UpdateTask(title="x")), BOB),
    "delete": lambda s, ref: delete_task(s, on(ref, DeleteTask()), BOB),
    "execute": lambda s, ref: execute_task(s, ref, ExecuteTask(), BOB),
    "retry": lambda s, ref: retry_task(s, on(ref, RetryTask()), BOB, spending=NOTHING_SPENT),
    "cancel": lambda s, ref: cancel_task(s, on(ref, CancelTask()), BOB),
    "approve": lambda s, ref: approve_work(s, on(ref, ApproveWork()), BOB),
    "reject": lambda s, ref: reject_work(s, on(ref, RejectWork(reason="no")), BOB),
    "history": lambda s, ref: task_history(s, ref, BOB.team_id),
    "as_of": lambda s, ref: task_as_of(s, ref, BOB.team_id, datetime.now(UTC)),
}


@pytest.mark.parametrize("command", AS_ANOTHER_TEAM.values(), ids=AS_ANOTHER_TEAM)
def test_another_teams_task_is_not_found(store: Store, command: Callable[..., Any]) -> None:
    project = new_project(store)["id"]
    task = new_task(store, project, slug="mine")
    position = store.max_position()
    for ref in (task["id"], "mine"):
        with pytest.raises(NotFoundError) as raised:
            command(store, ref)
        assert raised.value.code == "TASK_NOT_FOUND"
    assert store.max_position() == position


def test_another_teams_project_is_not_found(store: Store) -> None:
    project = new_project(store, slug="web")["id"]
    for ref in (project, "web"):
        with pytest.raises(NotFoundError) as raised:
            new_task(store, ref, by=BOB)
        assert raised.value.code == "PROJECT_NOT_FOUND"
        with pytest.raises(NotFoundError):
            update_project(store, on(ref, UpdateProject(name="x")), BOB)
        with pytest.raises(NotFoundError):
            clone_project(store, on(ref, CloneProject(name="copy")), BOB, [])
    with pytest.raises(NotFoundError):
        delete_project(store, on(project, DeleteProject()), BOB)


def test_another_teams_task_cannot_be_a_dependency(store: Store) -> None:
    theirs = new_task(store, new_project(store, by=BOB)["id"], by=BOB)["id"]
    ours = new_project(store)["id"]
    with pytest.raises(NotFoundError):
        new_task(store, ours, dependencies=[theirs])
    task = new_task(store, ours)["id"]
    with pytest.raises(NotFoundError):
        update_task(store, on(task, UpdateTask(dependencies=[theirs])), ALICE)


def test_a_deleted_task_is_not_found_but_keeps_its_history(store: Store) -> None:
    project = new_project(store)["id"]
    task = new_task(store, project)["id"]
    delete_task(store, on(task, DeleteTask(reason="obsolete")), ALICE)
    with pytest.raises(NotFoundError):
        update_task(store, on(task, UpdateTask(title="x")), ALICE)
    history = task_history(store, task, ALICE.team_id)["history"]
    assert history[-1]["type"] == "task.deleted"
    assert history[-1]["data"] == {"reason": "obsolete"}


# ---- dependencies --------------------------------------------------------------------------


def test_a_task_runs_only_when_its_dependencies_are_completed(store: Store) -> None:
    project = new_project(store)["id"]
    first = new_task(store, project, title="first")["id"]
    second = new_task(store, project, title="second", dependencies=[first])["id"]
    with pytest.raises(DependencyNotMetError) as raised:
        execute_task(store, second, ExecuteTask(), ALICE)
    assert raised.value.code == "TASK_DEPENDENCY_NOT_MET"
    assert raised.value.details == {"dependencies": [first]}
    complete(store, first)
    answer = execute_task(store, second, ExecuteTask(), ALICE)
    assert isinstance(answer, Queued) and answer.data["status"] == "queued"


def test_a_deleted_dependency_no_longer_blocks(store: Store) -> None:
    project = new_project(store)["id"]
    first = new_task(store, project)["id"]
    second = new_task(store, project, dependencies=[first])["id"]
    delete_task(store, on(first, DeleteTask()), ALICE)
    assert execute_task(store, second, ExecuteTask(), ALICE).data["status"] == "queued"


def test_dependencies_may_not_form_a_cycle(store: Store) -> None:
    project = new_project(store)["id"]
    a = new_task(store, project, title="a")["id"]
    b = new_task(store, project, title="b", dependencies=[a])["id"]
    c = new_task(store, project, title="c", dependencies=[b])["id"]
    position = store.max_position()
    for refs in ([a], [b], [c], [b, c]):
        with pytest.raises(DependencyCycleError) as raised:
            update_task(store, on(a, UpdateTask(dependencies=refs)), ALICE)
        assert raised.value.code == "TASK_DEPENDENCY_CYCLE"
    assert store.max_position() == position
    d = new_task(store, project, title="d")["id"]
    update_task(store, on(a, UpdateTask(dependencies=[d])), ALICE)
    assert load_task(store, a).dependencies == [d]


def test_replacing_dependencies_removes_the_ones_not_given(store: Store) -> None:
    project = new_project(store)["id"]
    a, b = (new_task(store, project, title=t)["id"] for t in "ab")
    c = new_task(store, project, dependencies=[a, b])["id"]
    update_task(store, on(c, UpdateTask(dependencies=[b])), ALICE)
    assert load_task(store, c).dependencies == [b]


# ---- project status ------------------------------------------------------------------------


def test_an_archived_project_refuses_new_tasks_and_execution(store: Store) -> None:
    project = new_project(store, slug="web")["id"]
    task = new_task(store, project)["id"]
    update_project(store, on(project, UpdateProject(status="archived")), ALICE)
    with pytest.raises(ProjectArchivedError) as raised:
        new_task(store, project)
    assert raised.value.code == "PROJECT_ARCHIVED"
    with pytest.raises(ProjectArchivedError):
        execute_task(store, task, ExecuteTask(), ALICE)
    with pytest.raises(ProjectArchivedError):
        submit_task(store, SubmitTask(description="x", project_id="web"), ALICE)
    update_project(store, on(project, UpdateProject(status="active")), ALICE)
    assert execute_task(store, task, ExecuteTask(), ALICE).data["status"] == "queued"


def test_a_deleted_project_is_not_found(store: Store) -> None:
    project = new_project(store, slug="web")["id"]
    delete_project(store, on("web", DeleteProject()), ALICE)
    with pytest.raises(NotFoundError):
        new_task(store, project)
    assert new_project(store, slug="web")["id"] != project


def test_a_submitted_task_is_queued_in_the_teams_default_project(store: Store) -> None:
    first = submit_task(store, SubmitTask(description="Add a README\nmore"), ALICE)
    second = submit_task(store, SubmitTask(description="Fix CI", title="CI"), ALICE)
    assert isinstance(first, Submitted) and first.data["status"] == "queued"
    one, two = load_task(store, first.data["task_id"]), load_task(store, second.data["task_id"])
    assert one.title == "Add a README" and two.title == "CI"
    assert one.project_id == two.project_id
    default = store.load_live(Project, "default", ALICE.team_id, "project")
    assert str(default.id) == one.project_id
    theirs = submit_task(store, SubmitTask(description="theirs"), BOB)
    assert load_task(store, theirs.data["task_id"], BOB).project_id != one.project_id


# ---- clone ---------------------------------------------------------------------------------


def test_a_clone_without_tasks_copies_the_settings_only(store: Store) -> None:
    source = new_project(store, slug="web", settings={"agent": "codex"}, description="d")
    new_task(store, source["id"])
    answer = clone_project(store, on("web", CloneProject(name="Copy", slug="copy")), ALICE, [])
    assert isinstance(answer, Created) and answer.data["cloned_task_count"] == 0
    clone = answer.data
    assert clone["cloned_from"] == source["id"] and clone["status"] == "active"
    assert clone["settings"] == {"agent": "codex"} and clone["description"] == "d"
    assert str(store.resolve("copy", ALICE.team_id, "project")) == clone["id"]
    assert tasks_in(store, clone["id"]) == []
    bare_clone = on("web", CloneProject(name="Bare", include_settings=False))
    bare = clone_project(store, bare_clone, ALICE, [])
    assert bare.data["settings"] == {} and bare.data["resource_limits"] == {}


def test_a_clone_with_tasks_copies_the_live_ones_and_their_dependencies(store: Store) -> None:
    source = new_project(store)["id"]
    a = new_task(store, source, title="a", tags=["x"])["id"]
    b = new_task(store, source, title="b", dependencies=[a], slug="bee")["id"]
    gone = new_task(store, source, title="gone")["id"]
    delete_task(store, on(gone, DeleteTask()), ALICE)
    execute_task(store, a, ExecuteTask(), ALICE)
    elsewhere = new_task(store, new_project(store)["id"], title="elsewhere")["id"]

    answer = clone_project(
        store,
        on(source, CloneProject(name="Copy", include_tasks=True)),
        ALICE,
        [a, b, gone, elsewhere],
    )
    assert answer.data["cloned_task_count"] == 2
    copies = {t.title: t for t in tasks_in(store, answer.data["id"])}
    assert set(copies) == {"a", "b"}
    assert copies["a"].tags == ["x"] and copies["a"].status == TaskStatus.PENDING.value
    assert copies["b"].dependencies == [str(copies["a"].id)]
    assert copies["b"].slug is None and copies["a"].created_by == ALICE.id
    assert load_task(store, "bee").project_id == source  # the original keeps its slug


# ---- execution intents ---------------------------------------------------------------------


def test_cancelling_a_queued_task_cancels_it_and_a_running_one_only_requests(
    store: Store,
) -> None:
    project = new_project(store)["id"]
    queued, running = (new_task(store, project, title=t)["id"] for t in ("q", "r"))
    for ref in (queued, running):
        execute_task(store, ref, ExecuteTask(), ALICE)
    task = load_task(store, running)
    task.start_execution(str(task.execution_id), "worker-1", RUNNER, at=store.clock.now())
    store.commit(task)

    now = cancel_task(store, on(queued, CancelTask(reason="no")), ALICE)
    later = cancel_task(store, on(running, CancelTask(reason="stop")), ALICE)
    assert (now.now, now.task["status"], now.task["cancel_requested"]) == (
        True,
        "cancelled",
        False,
    )
    assert now.task["completed_at"] is not None
    assert (later.now, later.task["status"], later.task["cancel_requested"]) == (
        False,
        "running",
        True,
    )
    with pytest.raises(TaskAlreadyRunningError):
        delete_task(store, on(running, DeleteTask()), ALICE)


def test_approving_twice_is_one_decision(store: Store) -> None:
    project = new_project(store)["id"]
    task = new_task(store, project)["id"]
    execute_task(store, task, ExecuteTask(), ALICE)
    run_and_review(store, task)
    first = approve_work(store, on(task, ApproveWork(comment="ok")), ANNA)
    position = store.max_position()
    again = approve_work(store, on(task, ApproveWork(comment="ok")), ANNA)
    assert first.data["status"] == again.data["status"] == "completed"
    assert store.max_position() == position == again.position == first.position


def test_a_rejection_queues_a_new_attempt(store: Store) -> None:
    project = new_project(store)["id"]
    task = new_task(store, project)["id"]
    first = execute_task(store, task, ExecuteTask(), ALICE).data
    run_and_review(store, task)
    answer = reject_work(store, on(task, RejectWork(reason="tests fail")), ANNA).data
    assert answer["status"] == "queued" and answer["attempt"] == 2
    assert answer["execution_id"] != first["execution_id"]
    with pytest.raises(InvalidTransitionError):
        reject_work(store, on(task, RejectWork(reason="again")), ANNA)


def test_a_retry_queues_the_next_attempt_of_a_cancelled_task(store: Store) -> None:
    project = new_project(store)["id"]
    task = new_task(store, project)["id"]
    with pytest.raises(InvalidTransitionError):
        retry_task(store, on(task, RetryTask()), ALICE, spending=NOTHING_SPENT)
    cancel_task(store, on(task, CancelTask()), ALICE)
    answer = retry_task(store, on(task, RetryTask(priority=4)), ALICE, spending=NOTHING_SPENT).data
    assert (answer["status"], answer["retry_attempt"], answer["priority"]) == (
        "queued",
        1,
        "urgent",
    )


# ---- history -------------------------------------------------------------------------------


@on_every_store
def test_history_lists_every_event_with_increasing_positions_that_match_the_log(
    store: Store,
) -> None:
    project = new_project(store)["id"]
    other = new_task(store, project, title="interleaved")["id"]
    task = new_task(store, project, slug="audited")["id"]
    positions = [
        update_task(store, on(task, UpdateTask(title="Renamed", tags=["a"])), ANNA).position,
        update_task(store, on(other, UpdateTask(title="noise")), ALICE).position,
        execute_task(store, task, ExecuteTask(), ALICE).position,
        cancel_task(store, on(task, CancelTask(reason="no")), ANNA).position,
    ]
    history = task_history(store, "audited", ALICE.team_id)
    entries = history["history"]
    assert history["task_id"] == task
    assert [e["type"] for e in entries] == [
        "task.created",
        "task.updated",
        "task.tags_added",
        "task.execution_requested",
        "task.cancelled",
    ]
    assert [e["version"] for e in entries] == [1, 2, 3, 4, 5]
    assert [e["actor"] for e in entries] == ["alice", "anna", "anna", "alice", "anna"]
    assert entries[1]["request_id"] == ANNA.request_id
    assert entries[1]["data"] == {"changes": {"title": "Renamed"}}
    numbers = [e["position"] for e in entries]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert positions[0] == numbers[2] and positions[2:] == numbers[3:]
    for entry in entries:
        notification = store.notification_at(entry["position"])
        assert notification is not None
        assert str(notification.originator_id) == task
        assert notification.originator_version == entry["version"]
    assert entries[-1]["timestamp"].endswith("Z")


def test_as_of_returns_the_state_at_a_moment(store: Store) -> None:
    project = new_project(store)["id"]
    before = _moment()
    task = new_task(store, project, title="one")["id"]
    after_create = _moment()
    update_task(store, on(task, UpdateTask(title="two")), ALICE)
    after_update = _moment()
    execute_task(store, task, ExecuteTask(), ALICE)
    cancel_task(store, on(task, CancelTask()), ALICE)
    delete_task(store, on(task, DeleteTask()), ALICE)

    with pytest.raises(NotFoundError):
        task_as_of(store, task, ALICE.team_id, before)
    then = task_as_of(store, task, ALICE.team_id, after_create)
    assert (then["title"], then["status"], then["version"], then["deleted"]) == (
        "one",
        "pending",
        1,
        False,
    )
    assert then["as_of"].endswith("Z")
    later = task_as_of(store, task, ALICE.team_id, after_update)
    assert (later["title"], later["version"]) == ("two", 2)
    now = task_as_of(store, task, ALICE.team_id, _moment())
    assert (now["status"], now["deleted"]) == ("cancelled", True)


def _moment() -> datetime:
    time.sleep(0.002)
    moment = datetime.now(UTC)
    time.sleep(0.002)
    return moment


# ---- restart -------------------------------------------------------------------------------


@on_databases
def test_everything_written_survives_closing_and_reopening_the_ledger(
    settings: Settings, store: Store
) -> None:
    project = new_project(store, slug="web")["id"]
    cmd = CreateTask(project_id="web", title="Durable", slug="durable", tags=["t"])
    task = create_task(store, cmd, ALICE, keyed("create_task", cmd)).data["id"]
    execute_task(store, task, ExecuteTask(), ALICE)
    history = task_history(store, task, ALICE.team_id)
    position = store.max_position()
    store.close()

    reopened = open_store(settings, create_tables=False)
    try:
        assert reopened.max_position() == position
        restored = reopened.load_live(Task, "durable", ALICE.team_id, "task")
        assert (str(restored.id), restored.status, restored.tags) == (task, "queued", ["t"])
        assert str(reopened.resolve("web", ALICE.team_id, "project")) == project
        assert task_history(reopened, task, ALICE.team_id) == history
        replay = create_task(reopened, cmd, ALICE, keyed("create_task", cmd))
        assert replay.replayed and replay.data["id"] == task
        with pytest.raises(AlreadyExistsError):
            new_task(reopened, "web", slug="durable")
        assert new_task(reopened, "web", title="after restart")["version"] == 1
        assert reopened.max_position() > position
    finally:
        reopened.close()
