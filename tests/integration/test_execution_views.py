"""The execution read models on real SQLite and real Postgres: queue, HITL items, agent output.

Real aggregates (Task, Question, Checkpoint, Experience, OutputChunk) are saved through the ledger
and projected by the real runner; each assertion holds on both backends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import pytest

from application.commands import ExecuteTask, ExecutionOptions
from domain.execution_policy import ExecutionPolicy
from domain.hitl import Checkpoint, Experience, Question
from domain.output import OutputChunk
from domain.task import Task
from domain.values import Actor, Priority, TaskStatus
from projections.execution import epoch
from projections.execution_rows import HitlQuery, QueueRow
from projections.read_model import ReadModel
from tests.builders import execute_task
from tests.integration.views_scenario import BACKENDS
from tests.integration.views_world import ALICE, BOB, World, world
from tests.postgres_server import fresh_database

WORKER = Actor("worker:w1", "team-a", "exec")
LEASE = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
NOW = time.time()
PAST = datetime.fromtimestamp(NOW - 600, UTC)
FUTURE = datetime.fromtimestamp(NOW + 3600, UTC)


# ---- writes through real aggregates ------------------------------------------------------------


def act(w: World, task_id: str, step: Callable[[Task], Any], by: Actor = ALICE) -> int:
    task = w.store.load(Task, UUID(task_id), by.team_id, "task")
    step(task)
    return w.store.commit(task)


def execute(w: World, task_id: str, by: Actor = ALICE, **options: Any) -> int:
    cmd = ExecuteTask(options=ExecutionOptions(**options))
    return execute_task(w.store, task_id, cmd, by).position


def start(
    w: World, task_id: str, by: Actor = ALICE, lease: datetime | None = LEASE, *, queue: bool = True
) -> int:
    if queue:
        execute(w, task_id, by)
    now = w.store.clock.now()
    return act(
        w, task_id, lambda t: t.start_execution(str(t.execution_id), "w1", by, lease, at=now), by
    )


def ask(w: World, task_id: str, by: Actor = ALICE, **fields: Any) -> str:
    task = w.store.load(Task, UUID(task_id), by.team_id, "task")
    item = Question(
        team_id=task.team_id,
        project_id=task.project_id,
        task_id=task_id,
        execution_id=str(task.execution_id),
        **(
            {"question": "Which?", "options": ["a", "b"], "default": None, "deadline": None}
            | {"actor": "worker:w1", "request_id": str(task.execution_id)}
            | fields
        ),
    )
    w.store.commit(item)
    return str(item.id)


def checkpoint(w: World, task_id: str, deadline: datetime | None = None) -> str:
    task = w.store.load(Task, UUID(task_id), "team-a", "task")
    item = Checkpoint(
        team_id=task.team_id,
        project_id=task.project_id,
        task_id=task_id,
        execution_id=str(task.execution_id),
        action="deploy",
        description=None,
        data={"env": "staging"},
        deadline=deadline,
        actor="worker:w1",
        request_id=str(task.execution_id),
    )
    w.store.commit(item)
    return str(item.id)


def propose(w: World, task_id: str) -> str:
    task = w.store.load(Task, UUID(task_id), "team-a", "task")
    item = Experience(
        team_id=task.team_id,
        project_id=task.project_id,
        task_id=task_id,
        execution_id=str(task.execution_id),
        title="Cache the wheels",
        content="pip is slow",
        tags=["ci"],
        actor="worker:w1",
        request_id=str(task.execution_id),
    )
    w.store.commit(item)
    return str(item.id)


def decide(w: World, item_id: str, step: Callable[[Any], Any]) -> int:
    item = w.ledger.repository.get(UUID(item_id))
    step(item)
    return w.store.commit(item)


def write_output(w: World, task_id: str, texts: list[str], by: Actor = ALICE) -> list[int]:
    task = w.store.load(Task, UUID(task_id), by.team_id, "task")
    positions = []
    for seq, text in enumerate(texts, 1):
        chunk = OutputChunk(
            task.team_id, task.project_id, task_id, str(task.execution_id), seq, "stdout", text
        )
        positions.append(w.store.commit(chunk))
    return positions


# ---- the truth the queue must show -------------------------------------------------------------


def expected_queue(w: World) -> dict[str, tuple[Any, ...]]:
    """What each task's queue row must say, replayed from the aggregates."""
    expected = {}
    for notification in w.ledger.recorder.select_notifications(0, 100_000):
        event = w.ledger.mapper.to_domain_event(notification)
        if not isinstance(event, Task.Created):
            continue
        task = w.ledger.repository.get(event.originator_id)
        if task.deleted:
            continue
        if task.status == "queued":
            state = ("queued", None, None)
        elif task.worker_id is not None:
            lease = epoch(task.lease_until) if task.lease_until else None
            state = ("running", task.worker_id, lease)
        else:
            continue
        expected[str(task.id)] = (task.team_id, task.execution_id, task.attempt, *state)
    return expected


def shown(row: QueueRow) -> tuple[Any, ...]:
    return (row.team_id, row.execution_id, row.attempt, row.state, row.worker_id, row.lease_until)


def assert_queue_matches_aggregates(w: World, rm: ReadModel) -> None:
    rows = rm.in_flight()
    assert len({r.task_id for r in rows}) == len(rows)
    assert {r.task_id: shown(r) for r in rows} == expected_queue(w)


# ---- one scenario per backend ------------------------------------------------------------------


def build(w: World) -> SimpleNamespace:
    s = SimpleNamespace(world=w, rm=w.read_model)
    s.p1, s.p2 = w.project("Platform"), w.project("Website")
    s.q1 = w.project("Team b platform", by=BOB)
    names = {
        "low": ("low", s.p1),
        "normal": ("normal", s.p1),
        "urgent": ("urgent", s.p2),
        "later": ("normal", s.p1),
        "ttl": ("normal", s.p2),
        "backoff": ("low", s.p1),
        "running": ("high", s.p1),
        "finished": ("normal", s.p1),
        "cancelled": ("normal", s.p1),
        "reviewed": ("normal", s.p2),
        "rejected": ("high", s.p2),
        "expired": ("normal", s.p1),
        "unqueued": ("normal", s.p1),
        "waiting": ("normal", s.p1),
        "moved": ("low", s.p2),
    }
    for name, (priority, project) in names.items():
        setattr(s, name, w.task(project, name, priority=priority))
    s.theirs = w.task(s.q1, "theirs", by=BOB)
    s.theirs_queued = w.task(s.q1, "theirs queued", by=BOB)
    for name in ("low", "normal", "urgent", "later", "moved"):
        execute(w, getattr(s, name))
    execute(w, s.theirs, BOB)
    execute(w, s.theirs_queued, BOB)
    execute(w, s.ttl, queue_ttl=60, agent="codex")
    act(
        w,
        s.backoff,
        lambda t: t.request_execution(ExecutionPolicy(not_before=NOW + 300), None, [], ALICE),
    )
    act(w, s.moved, lambda t: t.set_priority(Priority.URGENT, ALICE))
    start(w, s.running, lease=None)
    act(w, s.running, lambda t: t.renew_lease(str(t.execution_id), LEASE, WORKER))
    start(w, s.finished)
    now = w.store.clock.now()
    act(w, s.finished, lambda t: t.finish_execution(TaskStatus.COMPLETED, {}, WORKER, at=now))
    execute(w, s.cancelled)
    w.cancel(s.cancelled)
    for name in ("reviewed", "rejected"):
        start(w, getattr(s, name))
        act(w, getattr(s, name), lambda t: t.request_review("done", WORKER))
    act(w, s.rejected, lambda t: t.reject("tests fail", ALICE))
    execute(w, s.expired)
    act(w, s.expired, lambda t: t.expire_in_queue(str(t.execution_id), WORKER, at=now))
    execute(w, s.unqueued)
    act(w, s.unqueued, lambda t: t.change_status(TaskStatus.PENDING, "later", ALICE, at=now))
    start(w, s.waiting)
    build_hitl(w, s)
    s.chunks = write_output(w, s.running, [f"line {n}\n" for n in range(5)])
    s.their_chunks = write_output(w, s.theirs, ["secret\n"], BOB)
    w.runner(batch=7).catch_up()
    return s


def build_hitl(w: World, s: SimpleNamespace) -> None:
    s.due = ask(w, s.waiting, question="Due?", deadline=PAST)
    act(w, s.waiting, lambda t: t.wait_for(str(t.execution_id), s.due, "question", WORKER))
    s.not_due = ask(w, s.running, deadline=FUTURE)
    s.forever = ask(w, s.running)
    s.answered = ask(w, s.running, deadline=PAST)
    decide(w, s.answered, lambda q: q.answer("b", "user-5"))
    s.due_checkpoint = checkpoint(w, s.running, deadline=PAST)
    s.approved = checkpoint(w, s.running)
    decide(w, s.approved, lambda c: c.decide(True, "fine", "user-6"))
    s.lesson = propose(w, s.running)
    s.withdrawn = ask(w, s.running, deadline=PAST)
    decide(w, s.withdrawn, lambda q: q.withdraw("execution ended", "worker:w1"))
    start(w, s.theirs, BOB, queue=False)
    s.their_due = ask(w, s.theirs, BOB, deadline=PAST)


@pytest.fixture(scope="module", params=BACKENDS)
def s(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    tmp = tmp_path_factory.mktemp(f"execution-{request.param}")
    if request.param == "sqlite":
        with world(tmp, None) as w:
            yield build(w)
        return
    with fresh_database(request.getfixturevalue("postgres_admin_url")) as url, world(tmp, url) as w:
        yield build(w)


def names(s: SimpleNamespace, rows: list[Any], key: str = "task_id") -> list[str]:
    by_id = {v: k for k, v in vars(s).items() if isinstance(v, str)}
    return [by_id[getattr(r, key)] for r in rows]


# ---- the queue ---------------------------------------------------------------------------------


def test_every_queue_row_equals_the_aggregate_it_projects(s):
    assert s.rm.position() == s.world.ledger.max_position()
    assert_queue_matches_aggregates(s.world, s.rm)


def test_the_queue_is_ordered_by_priority_then_age_across_teams(s):
    assert names(s, s.rm.queued()) == [
        "urgent",
        "moved",  # low when queued, urgent since: after the older urgent one
        "rejected",  # high, queued again on rejection
        "normal",
        "later",
        "theirs_queued",
        "ttl",
        "low",
        "backoff",
    ]
    assert names(s, s.rm.queued(limit=2)) == ["urgent", "moved"]


def test_a_new_priority_is_the_queued_row_priority(s):
    row = s.rm.queue_row(s.moved)
    assert row is not None
    assert (row.priority, row.state) == (4, "queued")


def test_a_queue_row_carries_its_time_to_live_agent_and_backoff(s):
    ttl = s.rm.queue_row(s.ttl)
    assert ttl is not None
    assert ttl.expires_at == pytest.approx(ttl.requested_at + 60)
    assert (ttl.agent, ttl.not_before) == ("codex", ttl.requested_at)
    backoff = s.rm.queue_row(s.backoff)
    assert backoff is not None
    assert (backoff.not_before, backoff.expires_at, backoff.agent) == (NOW + 300, None, None)
    (requested,) = [
        e
        for e in s.world.ledger.events.get(UUID(s.backoff))
        if isinstance(e, Task.ExecutionRequested)
    ]
    assert backoff.requested_at == pytest.approx(epoch(requested.timestamp))  # asked, not due


def test_a_running_execution_shows_its_worker_and_lease(s):
    row = s.rm.queue_row(s.running)
    assert row is not None
    assert (row.state, row.worker_id, row.lease_until, row.priority) == (
        "running",
        "w1",
        epoch(LEASE),
        3,
    )


def test_an_agent_waiting_on_a_person_still_holds_its_row(s):
    row = s.rm.queue_row(s.waiting)
    assert row is not None
    assert (row.state, row.worker_id) == ("running", "w1")


@pytest.mark.parametrize("name", ["finished", "cancelled", "reviewed", "expired", "unqueued"])
def test_an_execution_no_longer_in_flight_has_no_row(s, name):
    assert s.rm.queue_row(getattr(s, name)) is None


def test_a_task_never_queued_has_no_row(s):
    assert s.rm.queue_row(s.p1) is None


def test_rejected_work_is_queued_again_as_a_new_attempt(s):
    row = s.rm.queue_row(s.rejected)
    task = s.world.ledger.repository.get(UUID(s.rejected))
    assert row is not None
    assert (row.state, row.attempt, row.execution_id, row.priority) == (
        "queued",
        2,
        task.execution_id,
        3,
    )
    assert (row.worker_id, row.lease_until) == (None, None)


def test_in_flight_lists_every_state_oldest_first_and_narrows_to_a_team(s):
    rows = s.rm.in_flight()
    assert [r.requested_at for r in rows] == sorted(r.requested_at for r in rows)
    assert {r.state for r in rows} == {"queued", "running"}
    assert names(s, s.rm.in_flight("team-b")) == ["theirs", "theirs_queued"]
    ours = s.rm.in_flight("team-a")
    assert {r.team_id for r in ours} == {"team-a"}
    assert len(ours) == len(rows) - 2
    assert s.rm.in_flight("team-c") == []


# ---- HITL items --------------------------------------------------------------------------------


def items(s: SimpleNamespace, team: str = "team-a", **query: Any) -> list[str]:
    rows, total = s.rm.hitl_items(team, HitlQuery(**query))
    return names(s, rows, "id")


def test_hitl_items_are_listed_newest_first_with_their_total(s):
    rows, total = s.rm.hitl_items("team-a", HitlQuery())
    assert names(s, rows, "id") == [
        "withdrawn",
        "lesson",
        "approved",
        "due_checkpoint",
        "answered",
        "forever",
        "not_due",
        "due",
    ]
    assert total == 8


def test_hitl_items_page_with_limit_and_offset(s):
    rows, total = s.rm.hitl_items("team-a", HitlQuery(limit=3, offset=2))
    assert names(s, rows, "id") == ["approved", "due_checkpoint", "answered"]
    assert total == 8
    rows, total = s.rm.hitl_items("team-a", HitlQuery(limit=3, offset=8))
    assert (rows, total) == ([], 8)


def test_hitl_items_filter_by_kind_status_and_task(s):
    assert items(s, kinds=("checkpoint",)) == ["approved", "due_checkpoint"]
    assert items(s, kinds=("experience",), statuses=("pending",)) == ["lesson"]
    assert items(s, statuses=("answered", "withdrawn")) == ["withdrawn", "answered"]
    assert items(s, task_id=s.waiting) == ["due"]
    assert items(s, kinds=("question",), statuses=("pending",), task_id=s.running) == [
        "forever",
        "not_due",
    ]


def test_a_hitl_item_shows_its_fields_and_its_decision(s):
    by_id = {r.id: r for r in s.rm.hitl_items("team-a", HitlQuery())[0]}
    answered = by_id[s.answered]
    assert (answered.kind, answered.status, answered.decided_by) == (
        "question",
        "answered",
        "user-5",
    )
    assert answered.data == {
        "question": "Which?",
        "options": ["a", "b"],
        "default": None,
        "response": "b",
        "by_default": False,
    }
    assert answered.decided_at is not None
    assert answered.decided_at >= answered.created_at
    assert answered.deadline == pytest.approx(NOW - 600)
    approved = by_id[s.approved]
    assert (approved.status, approved.data["reason"], approved.data["data"]) == (
        "approved",
        "fine",
        {"env": "staging"},
    )
    withdrawn = by_id[s.withdrawn]
    assert (withdrawn.status, withdrawn.data["reason"]) == ("withdrawn", "execution ended")
    lesson = by_id[s.lesson]
    assert (lesson.kind, lesson.deadline, lesson.data["tags"]) == ("experience", None, ["ci"])
    assert {r.project_id for r in by_id.values()} == {s.p1}


def test_hitl_items_stay_within_their_team(s):
    assert items(s, "team-b") == ["their_due"]
    assert items(s, "team-b", task_id=s.running) == []
    assert items(s, task_id=s.theirs) == []


def test_due_items_are_pending_questions_and_checkpoints_past_their_deadline(s):
    due = s.rm.hitl_due(time.time())
    assert sorted(names(s, due, "id")) == ["due", "due_checkpoint", "their_due"]
    assert [r.deadline for r in due] == sorted(r.deadline for r in due)
    assert s.rm.hitl_due(NOW - 601) == []
    assert len(s.rm.hitl_due(time.time(), limit=1)) == 1
    later = names(s, s.rm.hitl_due(NOW + 3601), "id")
    assert "not_due" in later
    assert "forever" not in later


# ---- output ------------------------------------------------------------------------------------


def test_output_pages_by_position_after_a_cursor(s):
    first = s.rm.output("team-a", s.running, limit=2)
    assert [r.text for r in first] == ["line 0\n", "line 1\n"]
    assert [r.position for r in first] == s.chunks[:2]
    rest = s.rm.output("team-a", s.running, after=first[-1].position)
    assert [r.seq for r in rest] == [3, 4, 5]
    assert s.rm.output("team-a", s.running, after=rest[-1].position) == []
    row = first[0]
    assert (row.stream, row.task_id, row.execution_id) == (
        "stdout",
        s.running,
        s.world.ledger.repository.get(UUID(s.running)).execution_id,
    )


def test_output_stays_within_its_team(s):
    assert s.rm.output("team-b", s.running) == []
    assert s.rm.output("team-a", s.theirs) == []
    assert [r.text for r in s.rm.output("team-b", s.theirs)] == ["secret\n"]


# ---- changes after the first catch-up (fresh database per test) ------------------------------


def test_a_reopened_read_model_resumes_without_doubling_anything(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        project = w.project("P")
        first, second = w.task(project, "first"), w.task(project, "second", priority="urgent")
        start(w, first)
        question = ask(w, first, deadline=PAST)
        write_output(w, first, ["a", "b"])
        w.runner(batch=3).catch_up()
        w.read_model.close()

        reopened = w.open_read_model()
        execute(w, second)
        decide(w, question, lambda q: q.answer("a", "user-1"))
        now = w.store.clock.now()
        act(w, first, lambda t: t.finish_execution(TaskStatus.COMPLETED, {}, WORKER, at=now))
        assert w.runner(reopened, batch=2).catch_up() == w.ledger.max_position()
        assert w.runner(reopened, batch=2).catch_up() == w.ledger.max_position()

        assert [r.task_id for r in reopened.in_flight()] == [second]
        assert_queue_matches_aggregates(w, reopened)
        rows, total = reopened.hitl_items("team-a", HitlQuery())
        assert (total, [r.status for r in rows]) == (1, ["answered"])
        assert reopened.hitl_due(time.time()) == []
        assert [r.text for r in reopened.output("team-a", first)] == ["a", "b"]


def test_applying_the_same_events_twice_changes_nothing(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        task = w.task(w.project("P"), "t")
        start(w, task)
        ask(w, task)
        write_output(w, task, ["x"])
        notifications = w.ledger.recorder.select_notifications(0, 1_000)
        events = [(n.id, w.ledger.mapper.to_domain_event(n)) for n in notifications]
        head = w.read_model.apply(events)
        assert w.read_model.apply(events) == head
        assert w.read_model.apply(events[2:]) == head
        assert len(w.read_model.output("team-a", task)) == 1
        assert w.read_model.hitl_items("team-a", HitlQuery())[1] == 1
        assert_queue_matches_aggregates(w, w.read_model)


def test_one_event_per_batch_gives_the_same_rows_as_one_batch(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        project = w.project("P")
        tasks = [w.task(project, f"t{n}") for n in range(4)]
        for task in tasks[:3]:
            start(w, task)
            act(w, task, lambda t: t.request_review("done", WORKER))
        act(w, tasks[0], lambda t: t.reject("again", ALICE))
        act(w, tasks[1], lambda t: t.reject("again", ALICE))
        act(w, tasks[1], lambda t: t.set_priority(Priority.HIGH, ALICE))
        execute(w, tasks[3], queue_ttl=5)
        w.runner(batch=1).catch_up()
        assert_queue_matches_aggregates(w, w.read_model)
        assert names_of(w.read_model.queued(), tasks) == [1, 0, 3]


def names_of(rows: list[QueueRow], tasks: list[str]) -> list[int]:
    return [tasks.index(r.task_id) for r in rows]


def test_migrate_creates_the_execution_tables_idempotently(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        w.read_model.migrate()
        assert w.read_model.queued() == []
        assert w.read_model.in_flight() == []
        assert w.read_model.hitl_items("team-a", HitlQuery()) == ([], 0)
        assert w.read_model.hitl_due(time.time() + 1e9) == []
        assert w.read_model.output("team-a", "any") == []
