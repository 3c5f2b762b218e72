"""The timeline index (``tw_timeline``) on real SQLite and Postgres: one row per event of a task and
of its items with its kind, pages of it equal to a scan of the log, the task's newest events on a
page before the read model has them, and a read model from before the index reading the older
part from the event store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from application.timeline import TimelineQuery, task_history
from domain.hitl import Checkpoint, Question
from domain.task import Task
from domain.usage import Usage
from projections.timeline import entry_of
from tests.integration.views_scenario import BACKENDS
from tests.integration.views_world import ALICE, BOB, World, world
from tests.postgres_server import fresh_database

TEAM = ALICE.team_id


@pytest.fixture(params=BACKENDS)
def w(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "sqlite":
        with world(tmp_path, None) as built:
            yield built
        return
    with fresh_database(request.getfixturevalue("postgres_admin_url")) as url:
        with world(tmp_path, url) as built:
            yield built


def busy_task(w: World, rounds: int = 4) -> str:
    """A running task with usage reports, questions asked and answered, a checkpoint withdrawn,
    and another task beside it whose events belong to no one else's timeline."""
    project = w.project("timeline")
    task_id = w.task(project, "long")
    other = w.task(project, "beside")
    w.start(task_id)
    for i in range(rounds):
        add_round(w, task_id, i)
        w.update(other, title=f"beside {i}")
    return task_id


def add_round(w: World, task_id: str, i: int) -> None:
    task = w.store.load(Task, UUID(task_id), TEAM, "task")
    execution = task.execution_id or ""
    task.record_usage(execution, Usage(model="m", input_tokens=10 + i, output_tokens=1), ALICE)
    question = Question(team_id=TEAM, project_id=task.project_id, task_id=task_id,
                        execution_id=execution, question=f"q{i}?", options=[], default=None,
                        deadline=None, actor="worker:w1", request_id=execution)  # fmt: skip
    question.answer(f"a{i}", ALICE.id)
    checkpoint = Checkpoint(team_id=TEAM, project_id=task.project_id, task_id=task_id,
                            execution_id=execution, action=f"c{i}", description=None,
                            data={}, deadline=None, actor="worker:w1",
                            request_id=execution)  # fmt: skip
    checkpoint.withdraw("moved on", ALICE.id)
    w.ledger.save(task, question, checkpoint)


def scanned(w: World, task_id: str) -> list[tuple[int, str]]:
    """(position, kind) of the task's timeline events, by reading the whole log."""
    found = []
    for n in w.ledger.recorder.select_notifications(0, 100_000):
        entry = entry_of(w.ledger.mapper.to_domain_event(n))
        if entry is not None and entry[0] == task_id:
            found.append((n.id, entry[2] or "?"))
    return found


def paged(w: World, task_id: str, limit: int, kinds: frozenset[str]) -> list[tuple[int, str]]:
    q = TimelineQuery(kinds=kinds, limit=limit)
    seen: list[tuple[int, str]] = []
    while True:
        page = task_history(w.store, task_id, TEAM, w.read_model, q)
        seen += [(e["position"], e["kind"]) for e in page["history"]]
        if page["next_after"] is None:
            return seen
        q = TimelineQuery(kinds=kinds, limit=limit, after=page["next_after"])


INDEXED = frozenset({"task", "usage", "executions", "questions", "checkpoints", "reviews"})


def test_the_index_holds_each_event_of_the_task_and_its_items_with_its_kind(w):
    task_id = busy_task(w)
    w.runner().catch_up()
    rows = w.read_model.timeline(TEAM, task_id, (0, w.ledger.max_position()), None, 1000)
    assert rows == scanned(w, task_id)
    kinds = {kind for _, kind in rows}
    assert kinds == {"task", "usage", "executions", "questions", "checkpoints"}
    assert w.read_model.timeline(BOB.team_id, task_id, (0, 10**9), None, 1000) == []


@pytest.mark.parametrize("limit", [1, 3, 100])
def test_pages_of_the_index_are_the_tasks_events_in_log_order_each_once(w, limit):
    task_id = busy_task(w)
    w.runner().catch_up()
    assert paged(w, task_id, limit, INDEXED) == scanned(w, task_id)
    only = frozenset({"usage", "questions"})
    assert paged(w, task_id, limit, only) == [e for e in scanned(w, task_id) if e[1] in only]


def test_the_tasks_newest_events_are_on_the_page_before_the_read_model_has_them(w):
    task_id = busy_task(w, rounds=2)
    w.runner().catch_up()
    applied = w.read_model.position()
    add_round(w, task_id, 9)  # not applied: the task's usage is read from the store
    late = [(p, k) for p, k in scanned(w, task_id) if p > applied]
    kinds = ["usage", "questions", "questions", "checkpoints", "checkpoints"]
    assert [k for _, k in late] == kinds
    seen = paged(w, task_id, 5, INDEXED)
    assert seen == [e for e in scanned(w, task_id) if e[0] <= applied or e[1] == "usage"]
    w.runner().catch_up()
    assert paged(w, task_id, 5, INDEXED) == scanned(w, task_id)


def test_a_read_model_from_before_the_index_reads_the_older_events_from_the_store(w):
    task_id = busy_task(w, rounds=3)
    w.runner().catch_up()
    before = w.read_model.position()
    with w.read_model._writing() as cur:  # as a read model migrated before the index existed
        cur.execute("DROP TABLE tw_timeline")
    w.read_model.migrate()
    assert w.read_model.timeline_span() == (before, before)
    assert w.read_model.timeline(TEAM, task_id, (0, before), None, 1000) == []
    add_round(w, task_id, 7)
    w.runner().catch_up()
    for limit in (2, 100):
        assert paged(w, task_id, limit, INDEXED) == scanned(w, task_id)
    w.read_model.reset()  # a rebuild indexes it all
    w.runner().catch_up()
    assert w.read_model.timeline_span() == (0, w.ledger.max_position())
    assert w.read_model.timeline(TEAM, task_id, (0, 10**9), None, 1000) == scanned(w, task_id)


def test_a_withdrawal_that_does_not_say_its_item_takes_the_items_kind(w):
    task_id = busy_task(w, rounds=1)
    task = w.store.load(Task, UUID(task_id), TEAM, "task")
    checkpoint = Checkpoint(team_id=TEAM, project_id=task.project_id, task_id=task_id,
                            execution_id=task.execution_id or "", action="old",
                            description=None, data={}, deadline=None, actor=None,
                            request_id=None)  # fmt: skip
    checkpoint._withdrawn(
        reason="old", actor=ALICE.id, item=None, request_id=None
    )  # as written before v2
    w.ledger.save(checkpoint)
    w.runner().catch_up()
    rows = w.read_model.timeline(TEAM, task_id, (0, 10**9), None, 1000)
    assert rows[-1] == (w.ledger.max_position(), "checkpoints")
