"""The task facts (projections/task_facts.py) on real SQLite and real Postgres: tasks run, failed,
retried, waiting on a question, deleted, written through the real handlers and aggregates and
projected by the real runner; a project's figures are summed from them, another team's project
shows nothing, and a rebuild in other batches (or an event applied late) gives the same figures."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from domain.hitl import Question
from domain.task import Task
from domain.values import TaskStatus
from projections.analytics import FactWindow, ProjectFigures
from tests.integration.views_world import ALICE, BOB, World, world

ALL_DAYS = ("0001-01-01", "9999-12-31")  # every day: no test depends on the wall clock


@pytest.fixture
def w(tmp_path, database_url) -> Any:
    with world(tmp_path, database_url) as built:
        yield built


def figures(w: World, project_id: str, team_id: str = "team-a") -> ProjectFigures:
    first, last = ALL_DAYS
    window = FactWindow(team_id=team_id, project_id=project_id, day_from=first, day_to=last)
    return w.read_model.project_figures(window)


def asks_and_is_answered(w: World, task_id: str) -> None:
    w.start(task_id)
    task = w.store.load(Task, UUID(task_id), ALICE.team_id, "task")
    question = Question(
        team_id=task.team_id,
        project_id=task.project_id,
        task_id=task_id,
        execution_id=task.execution_id or "",
        question="Which database?",
        options=[],
        default=None,
        deadline=None,
        actor="worker:w1",
        request_id=task.execution_id,
    )
    task.wait_for(task.execution_id or "", str(question.id), "question", ALICE)
    w.store.commit(task, question)
    question.answer("Postgres", ALICE.id)
    task.resume(str(question.id), ALICE)
    w.store.commit(task, question)
    task.finish_execution(TaskStatus.COMPLETED, {}, ALICE, at=w.store.clock.now())
    w.store.commit(task)


def fails(w: World, task_id: str, error: str) -> None:
    w.start(task_id)
    task = w.store.load(Task, UUID(task_id), ALICE.team_id, "task")
    task.finish_execution(TaskStatus.FAILED, {"error": error}, ALICE, at=w.store.clock.now())
    w.store.commit(task)


def build(w: World) -> dict[str, str]:
    ids = {"p": w.project("Platform"), "theirs_p": w.project("Theirs", by=BOB)}
    ids["asked"] = w.task(ids["p"], "asks", estimated_duration=86400)
    ids["retried"] = w.task(ids["p"], "retried", metadata={"agent": "codex"})
    ids["gone"] = w.task(ids["p"], "deleted")
    ids["idle"] = w.task(ids["p"], "idle")
    ids["theirs"] = w.task(ids["theirs_p"], "theirs", by=BOB)
    asks_and_is_answered(w, ids["asked"])
    fails(w, ids["retried"], "tests failed")
    fails(w, ids["retried"], "tests failed again")
    w.finish(ids["gone"])
    w.delete(ids["gone"])
    w.finish(ids["theirs"], by=BOB)
    return ids


def test_a_projects_figures_sum_its_live_tasks_facts(w):
    ids = build(w)
    w.runner(batch=3).catch_up()
    f = figures(w, ids["p"])
    o = f.outcomes
    assert (o.created, o.completed, o.failed, o.cancelled) == (3, 1, 1, 0)  # the deleted left
    assert (o.on_time, o.rated) == (1, 1)
    assert f.duration.count == 1 and f.duration.median == f.duration.average
    assert f.duration.average is not None and f.duration.average > 0
    assert f.pickup.count == 2 and f.pickup.median == f.pickup.average
    assert f.waits.waits == 1 and f.waits.tasks == 1 and f.waits.open == 0
    assert 0 < f.waits.seconds < f.duration.average
    assert sum(d.created for d in f.days) == 3 and sum(d.failed for d in f.days) == 1
    agents = {a.agent: a for a in f.agents}
    assert set(agents) == {"codex", "default"}
    codex = agents["codex"]
    assert (codex.tasks, codex.executions, codex.retries, codex.failures) == (1, 2, 1, 2)
    assert codex.reasons == {"tests failed again": 1}
    [person] = f.people
    assert person.person == ALICE.id and (person.finished, person.completed) == (2, 1)


def test_another_teams_project_shows_nothing(w):
    ids = build(w)
    w.runner().catch_up()
    assert figures(w, ids["p"], team_id="team-b") == figures(w, "no-such-project")
    assert figures(w, ids["theirs_p"], team_id="team-b").outcomes.completed == 1
    assert figures(w, ids["theirs_p"]).outcomes.created == 0


def test_a_rebuild_in_other_batches_gives_the_same_figures(w):
    ids = build(w)
    w.runner(batch=1).catch_up()
    before = figures(w, ids["p"]), figures(w, ids["theirs_p"], team_id="team-b")
    w.read_model.reset()
    assert figures(w, ids["p"]).outcomes.created == 0
    w.runner(batch=500).catch_up()
    assert (figures(w, ids["p"]), figures(w, ids["theirs_p"], team_id="team-b")) == before


def test_a_fact_event_applied_late_counts_once(w):
    ids = build(w)
    w.runner().catch_up()
    before = figures(w, ids["p"])
    pairs = [(n.id, w.store.decode(n)) for n in w.store.notifications(0, 10_000)]
    late = max(
        p
        for p, e in pairs
        if isinstance(e, Task.ExecutionFinished) and str(e.originator_id) == ids["retried"]
    )
    w.read_model.reset()
    w.read_model.apply([(p, e) for p, e in pairs if p < late])
    w.read_model.skip(late)  # quarantined: passed over
    w.read_model.apply([(p, e) for p, e in pairs if p > late])
    assert figures(w, ids["p"]).outcomes.failed == 0
    event = dict(pairs)[late]
    assert w.read_model.apply_late(late, event) is True
    assert w.read_model.apply_late(late, event) is False
    assert figures(w, ids["p"]) == before
