"""Given execution rows and an event, then the rows after it (projections/execution.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from domain.execution_policy import ExecutionPolicy
from domain.hitl import Checkpoint, Experience, Question
from domain.output import OutputChunk
from domain.task import Task
from domain.values import Actor, Priority, TaskStatus, rfc3339
from projections.batch import ExecutionRows, evolve_batch, execution_keys
from projections.execution import (
    QueueContext,
    checkpoint_approved,
    checkpoint_rejected,
    checkpoint_requested,
    chunk_written,
    epoch,
    evolve_hitl,
    evolve_queue,
    execution_ended,
    execution_requested,
    execution_started,
    experience_approved,
    experience_proposed,
    experience_rejected,
    item_withdrawn,
    lease_renewed,
    priority_set,
    question_answered,
    question_asked,
    status_changed,
    work_rejected,
)
from projections.execution_rows import HitlRow, QueueRow
from projections.rows import TaskRow
from projections.tasks import TaskProjection
from tests.builders import a_task

ME = Actor(id="user-1", team_id="team-1", request_id="req-1")
DEADLINE = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
AT = datetime(2030, 1, 1, 11, 0, tzinfo=UTC)  # the moment a handler gives a stamped change


def new_task(priority: Priority = Priority.NORMAL) -> Task:
    return a_task(priority=int(priority), actor=ME.id, request_id=ME.request_id)


class Story:
    """A real Task whose events are folded into its task row and queue row as they happen."""

    def __init__(self, priority: Priority = Priority.NORMAL) -> None:
        self.task = new_task(priority)
        self.position = 0
        self.row: TaskRow | None = None
        self.queue: QueueRow | None = None
        self.options: dict[str, Any] = {}
        self.given(lambda task: None)

    def given(self, step: Callable[[Task], Any]) -> Story:
        """Runs the step and folds its events into the rows."""
        step(self.task)
        for event in self.task.collect_events():
            self.fold(event)
        return self

    def when(self, step: Callable[[Task], Any]) -> tuple[Any, QueueContext]:
        """Runs the step; answers its one event and the context a view would pass with it."""
        step(self.task)
        (event,) = self.task.collect_events()
        self.position += 1
        self.row = TaskProjection().evolve(self.row, event, self.position) or self.row
        return event, QueueContext(task=self.row, options=self.options, position=self.position)

    def fold(self, event: Any) -> None:
        self.position += 1
        self.row = TaskProjection().evolve(self.row, event, self.position) or self.row
        context = QueueContext(task=self.row, options=self.options, position=self.position)
        self.queue = evolve_queue(self.queue, event, context)
        if isinstance(event, Task.ExecutionRequested):
            self.options = dict(event.options)

    # ---- steps --------------------------------------------------------------------------------

    @staticmethod
    def queued(options: dict[str, Any] | None = None) -> Callable[[Task], Any]:
        return lambda task: task.request_execution(
            ExecutionPolicy(**options) if options else ExecutionPolicy(timeout=60), None, [], ME
        )

    @staticmethod
    def started(task: Task, lease_until: datetime | None = DEADLINE) -> None:
        task.start_execution(str(task.execution_id), "worker-7", ME, lease_until, at=AT)

    @staticmethod
    def reviewed(task: Task) -> None:
        task.request_review("please look", ME)


def running() -> Story:
    return Story().given(Story.queued({"queue_ttl": 30, "agent": "codex"})).given(Story.started)


# ---- the queue ---------------------------------------------------------------------------------


def test_a_requested_execution_is_queued_at_its_time_with_its_priority():
    story = Story(Priority.HIGH)
    e, ctx = story.when(Story.queued())
    row = execution_requested(None, e, ctx)
    assert row == QueueRow(
        task_id=str(story.task.id),
        team_id="team-1",
        project_id="project-1",
        execution_id=e.execution_id,
        state="queued",
        priority=3,
        attempt=1,
        requested_at=e.timestamp.timestamp(),
        not_before=e.timestamp.timestamp(),
        expires_at=None,
        agent=None,
        position=ctx.position,
    )


def test_a_requested_execution_carries_its_ttl_backoff_and_agent():
    story = Story()
    e, ctx = story.when(Story.queued({"queue_ttl": 90, "not_before": 2e9, "agent": "codex"}))
    row = execution_requested(None, e, ctx)
    assert row is not None
    assert row.expires_at == pytest.approx(e.timestamp.timestamp() + 90)
    assert row.not_before == 2e9
    assert row.agent == "codex"


def test_a_request_for_a_task_without_a_row_queues_nothing():
    e, ctx = Story().when(Story.queued())
    assert execution_requested(None, e, msgspec.structs.replace(ctx, task=None)) is None


def test_a_retry_replaces_the_row_of_the_attempt_before():
    story = Story().given(Story.queued()).given(Story.started)
    story.given(lambda t: t.finish_execution(TaskStatus.FAILED, {}, ME, at=AT))
    assert story.queue is None
    e, ctx = story.when(
        lambda t: t.request_execution(ExecutionPolicy(), Priority.URGENT, [], ME, retry=True)
    )
    row = execution_requested(None, e, ctx)
    assert row is not None
    assert (row.attempt, row.priority, row.state) == (2, 4, "queued")


def test_a_new_priority_moves_a_queued_row():
    story = Story().given(Story.queued())
    e, ctx = story.when(lambda t: t.set_priority(Priority.URGENT, ME))
    row = priority_set(story.queue, e, ctx)
    assert row is not None
    assert (row.priority, row.position) == (4, ctx.position)


def test_a_new_priority_leaves_a_running_row_and_no_row_alone():
    story = running()
    e, ctx = story.when(lambda t: t.set_priority(Priority.URGENT, ME))
    assert priority_set(story.queue, e, ctx) is story.queue
    e, ctx = Story().when(lambda t: t.set_priority(Priority.LOW, ME))
    assert priority_set(None, e, ctx) is None


def test_a_started_execution_runs_on_its_worker_until_its_lease():
    story = Story().given(Story.queued())
    e, ctx = story.when(Story.started)
    row = execution_started(story.queue, e, ctx)
    assert row is not None
    assert (row.state, row.worker_id, row.lease_until) == ("running", "worker-7", epoch(DEADLINE))
    assert (row.execution_id, row.requested_at) == (
        story.queue.execution_id,
        story.queue.requested_at,
    )


def test_a_start_without_a_lease_has_none():
    story = Story().given(Story.queued())
    e, ctx = story.when(lambda t: Story.started(t, None))
    row = execution_started(story.queue, e, ctx)
    assert row is not None
    assert row.lease_until is None


def test_a_renewed_lease_moves_the_lease():
    story = running()
    later = DEADLINE + timedelta(minutes=5)
    e, ctx = story.when(lambda t: t.renew_lease(str(t.execution_id), later, ME))
    row = lease_renewed(story.queue, e, ctx)
    assert row is not None
    assert (row.lease_until, row.state) == (epoch(later), "running")


@pytest.mark.parametrize("kind", ["question", "checkpoint"])
def test_an_agent_waiting_on_a_person_and_resuming_keeps_its_row(kind):
    story = running()
    before = story.queue
    e, ctx = story.when(lambda t: t.wait_for(str(t.execution_id), "item-1", kind, ME))
    assert evolve_queue(before, e, ctx) is before
    story.fold(e)
    e, ctx = story.when(lambda t: t.resume("item-1", ME))
    assert evolve_queue(before, e, ctx) is before


@pytest.mark.parametrize(
    "step",
    [
        Story.reviewed,
        lambda t: t.finish_execution(TaskStatus.COMPLETED, {"exit_code": 0}, ME, at=AT),
        lambda t: t.finish_execution(TaskStatus.CANCELLED, {}, ME, at=AT),
    ],
    ids=["review", "finish", "cancelled-by-its-agent"],
)
def test_an_execution_that_ends_leaves_the_queue(step):
    story = running()
    e, ctx = story.when(step)
    assert execution_ended(story.queue, e, ctx) is None
    assert evolve_queue(story.queue, e, ctx) is None


@pytest.mark.parametrize(
    "step",
    [
        lambda t: t.cancel("no", ME, at=AT),
        lambda t: t.expire_in_queue(str(t.execution_id), ME, at=AT),
        lambda t: t.change_status(TaskStatus.PENDING, "later", ME, at=AT),
    ],
    ids=["cancel", "expire", "back-to-pending"],
)
def test_a_queued_execution_that_ends_leaves_the_queue(step):
    story = Story().given(Story.queued())
    e, ctx = story.when(step)
    assert evolve_queue(story.queue, e, ctx) is None


def test_only_a_status_change_out_of_flight_removes_the_row():
    story = Story().given(Story.queued())
    e, ctx = story.when(lambda t: t.change_status(TaskStatus.PENDING, None, ME, at=AT))
    assert status_changed(story.queue, e, ctx) is None
    still_queued = SimpleNamespace(new="queued")  # no command makes this move today
    assert status_changed(story.queue, still_queued, ctx) is story.queue


def test_a_deleted_task_has_no_row():
    story = Story()
    e, ctx = story.when(lambda t: t.delete("gone", ME))
    assert evolve_queue(None, e, ctx) is None


def test_rejected_work_is_queued_again_at_the_task_priority_with_its_options():
    story = running().given(lambda t: t.set_priority(Priority.HIGH, ME)).given(Story.reviewed)
    assert story.queue is None
    e, ctx = story.when(lambda t: t.reject("the tests fail", ME))
    row = work_rejected(None, e, ctx)
    assert row is not None
    now = e.timestamp.timestamp()
    assert (row.state, row.priority, row.attempt, row.execution_id) == (
        "queued",
        3,
        2,
        e.execution_id,
    )
    assert (row.requested_at, row.not_before) == (now, now)
    assert row.expires_at == pytest.approx(now + 30)
    assert (row.agent, row.worker_id, row.lease_until) == ("codex", None, None)


def test_rejected_work_without_known_options_never_expires():
    story = running().given(Story.reviewed)
    e, ctx = story.when(lambda t: t.reject("again", ME))
    row = work_rejected(None, e, msgspec.structs.replace(ctx, options={}))
    assert row is not None
    assert (row.expires_at, row.agent, row.priority) == (None, None, 2)


def test_other_task_events_leave_the_row_alone():
    story = Story().given(Story.queued())
    e, ctx = story.when(lambda t: t.add_tags(["x"], ME))
    assert evolve_queue(story.queue, e, ctx) is story.queue


def test_a_whole_lifecycle_folds_to_no_row():
    story = running()
    assert story.queue is not None
    story.given(lambda t: t.finish_execution(TaskStatus.COMPLETED, {}, ME, at=AT))
    assert story.queue is None


# ---- HITL items --------------------------------------------------------------------------------


def ask(deadline: datetime | None = DEADLINE) -> Question:
    return Question(
        team_id="team-1",
        project_id="project-1",
        task_id="task-1",
        execution_id="exec-1",
        question="Which database?",
        options=["sqlite", "postgres"],
        default="sqlite",
        deadline=deadline,
        actor="worker:w1",
        request_id="exec-1",
    )


def checkpoint(deadline: datetime | None = None) -> Checkpoint:
    return Checkpoint(
        team_id="team-1",
        project_id="project-1",
        task_id="task-1",
        execution_id="exec-1",
        action="push",
        description="push to main",
        data={"branch": "main"},
        deadline=deadline,
        actor="worker:w1",
        request_id="exec-1",
    )


def experience() -> Experience:
    return Experience(
        team_id="team-1",
        project_id="project-1",
        task_id="task-1",
        execution_id="exec-1",
        title="Run migrations first",
        content="Tests need the schema.",
        tags=["db"],
        actor="worker:w1",
        request_id="exec-1",
    )


def created(item: Any, position: int = 7) -> tuple[HitlRow, Any]:
    (event,) = item.collect_events()
    row = evolve_hitl(None, event, position)
    assert row is not None
    return row, event


def decided(item: Any, row: HitlRow, position: int = 9) -> tuple[HitlRow | None, Any]:
    (event,) = item.collect_events()
    return evolve_hitl(row, event, position), event


def test_a_question_is_a_pending_item_with_its_fields():
    item = ask()
    (e,) = item.collect_events()
    row = question_asked(None, e, 7)
    assert row == HitlRow(
        id=str(item.id),
        kind="question",
        team_id="team-1",
        project_id="project-1",
        task_id="task-1",
        execution_id="exec-1",
        status="pending",
        created_at=rfc3339(e.timestamp) or "",
        decided_at=None,
        decided_by=None,
        deadline=epoch(DEADLINE),
        data={
            "question": "Which database?",
            "options": ["sqlite", "postgres"],
            "default": "sqlite",
        },
        position=7,
    )


def test_a_checkpoint_is_a_pending_item_with_its_fields():
    item = checkpoint(DEADLINE)
    (e,) = item.collect_events()
    row = checkpoint_requested(None, e, 3)
    assert (row.kind, row.status, row.deadline, row.position) == (
        "checkpoint",
        "pending",
        epoch(DEADLINE),
        3,
    )
    assert row.data == {"action": "push", "description": "push to main", "data": {"branch": "main"}}


def test_an_experience_is_a_pending_item_without_a_deadline():
    (e,) = experience().collect_events()
    row = experience_proposed(None, e, 4)
    assert (row.kind, row.status, row.deadline) == ("experience", "pending", None)
    assert row.data == {
        "title": "Run migrations first",
        "content": "Tests need the schema.",
        "tags": ["db"],
    }


def test_an_answered_question_records_the_answer_who_and_when():
    item = ask()
    row, _ = created(item)
    item.answer("postgres", "user-2", by_default=False)
    (e,) = item.collect_events()
    after = question_answered(row, e, 9)
    assert after is not None
    assert (after.status, after.decided_by, after.decided_at) == (
        "answered",
        "user-2",
        rfc3339(e.timestamp),
    )
    assert after.data == row.data | {"response": "postgres", "by_default": False}
    assert (after.position, after.created_at) == (row.position, row.created_at)


def test_a_question_answered_by_default_says_so():
    item = ask()
    row, _ = created(item)
    item.answer("sqlite", "system", by_default=True)
    after, _ = decided(item, row)
    assert after is not None
    assert after.data["by_default"] is True


@pytest.mark.parametrize(
    ("approved", "handler", "status"),
    [(True, checkpoint_approved, "approved"), (False, checkpoint_rejected, "rejected")],
)
def test_a_decided_checkpoint_records_the_decision(approved, handler, status):
    item = checkpoint()
    row, _ = created(item)
    item.decide(approved, "looks right", "user-3")
    (e,) = item.collect_events()
    after = handler(row, e, 9)
    assert (after.status, after.decided_by) == (status, "user-3")
    assert after.data == row.data | {"reason": "looks right", "by_default": False}
    assert evolve_hitl(row, e, 9) == after


@pytest.mark.parametrize(
    ("approved", "handler", "status"),
    [(True, experience_approved, "approved"), (False, experience_rejected, "rejected")],
)
def test_a_decided_experience_records_the_decision(approved, handler, status):
    item = experience()
    row, _ = created(item)
    item.decide(approved, None, "user-4")
    (e,) = item.collect_events()
    after = handler(row, e, 9)
    assert (after.status, after.decided_by) == (status, "user-4")
    assert after.data == row.data | {"reason": None}
    assert evolve_hitl(row, e, 9) == after


@pytest.mark.parametrize("make", [ask, checkpoint, experience])
def test_a_withdrawn_item_of_any_kind_records_why(make):
    item = make()
    row, _ = created(item)
    item.withdraw("the execution ended", "worker:w1")
    (e,) = item.collect_events()
    after = item_withdrawn(row, e, 9)
    assert (after.status, after.decided_by, after.data["reason"]) == (
        "withdrawn",
        "worker:w1",
        "the execution ended",
    )
    assert evolve_hitl(row, e, 9) == after


def test_a_decision_on_an_unknown_item_makes_no_row():
    item = ask()
    item.collect_events()
    item.answer("postgres", "user-2")
    (e,) = item.collect_events()
    assert evolve_hitl(None, e, 9) is None


def test_a_naive_deadline_is_taken_as_utc():
    row, _ = created(ask(DEADLINE.replace(tzinfo=None)))
    assert row.deadline == epoch(DEADLINE)


# ---- output ------------------------------------------------------------------------------------


def test_a_written_chunk_is_a_row_at_its_position_under_its_team():
    chunk = OutputChunk(
        team_id="team-1",
        project_id="project-1",
        task_id="task-1",
        execution_id="exec-1",
        seq=3,
        stream="stderr",
        text="warning: x\n",
    )
    (e,) = chunk.collect_events()
    entry = chunk_written(e, 42)
    assert entry.team_id == "team-1"
    assert msgspec.structs.asdict(entry.row) == {
        "position": 42,
        "task_id": "task-1",
        "execution_id": "exec-1",
        "seq": 3,
        "stream": "stderr",
        "text": "warning: x\n",
        "timestamp": rfc3339(e.timestamp),
    }


# ---- a batch -----------------------------------------------------------------------------------


def numbered(events: list[Any], start: int = 1) -> list[tuple[int, Any]]:
    return list(enumerate(events, start))


def test_a_batch_evolves_queue_hitl_and_output_rows_in_order():
    task = new_task()
    task.request_execution(ExecutionPolicy(agent="claude"), None, [], ME)
    Story.started(task)
    question = ask()
    question.answer("postgres", "user-2")
    chunk = OutputChunk("team-1", "project-1", str(task.id), "exec-1", 1, "stdout", "hi")
    events = numbered(task.collect_events() + question.collect_events() + chunk.collect_events())
    changes = evolve_batch(events, {}, {})
    key = str(task.id)
    row = changes.queue[key]
    assert row is not None
    assert (row.state, row.worker_id, row.agent, row.position) == (
        "running",
        "worker-7",
        "claude",
        3,
    )
    assert changes.options == {key: ExecutionPolicy(agent="claude").recorded()}
    assert [(r.status, r.position) for r in changes.hitl.values()] == [("answered", 4)]
    assert [(o.team_id, o.row.position, o.row.text) for o in changes.output] == [
        ("team-1", 6, "hi")
    ]
    assert changes.position == 6


def test_a_batch_starts_from_the_loaded_rows():
    story = running().given(Story.reviewed)
    question = ask()
    question_row, _ = created(question)
    story.task.reject("again", ME)
    question.withdraw("cancelled", "user-1")
    events = numbered(story.task.collect_events() + question.collect_events(), start=50)
    assert execution_keys(events).options == {str(story.task.id)}
    assert execution_keys(events).hitl == {str(question.id)}
    loaded = ExecutionRows(
        options={str(story.task.id): {"queue_ttl": 10}}, hitl={str(question.id): question_row}
    )
    changes = evolve_batch(events, {str(story.task.id): story.row}, {}, loaded)
    row = changes.queue[str(story.task.id)]
    assert row is not None
    assert row.expires_at == pytest.approx(row.requested_at + 10)
    assert changes.hitl[str(question.id)].status == "withdrawn"


def test_a_batch_that_ends_an_execution_deletes_its_row_and_a_deleted_task_its_options():
    story = running().given(lambda t: t.finish_execution(TaskStatus.FAILED, {}, ME, at=AT))
    key = str(story.task.id)
    story.task.delete("gone", ME)
    events = numbered(story.task.collect_events(), start=20)
    changes = evolve_batch(events, {key: story.row}, {}, ExecutionRows())
    assert changes.queue == {}  # there was no row to delete
    assert changes.options == {key: None}
    story = running()
    key = str(story.task.id)
    story.task.finish_execution(TaskStatus.COMPLETED, {}, ME, at=AT)
    events = numbered(story.task.collect_events(), start=30)
    changes = evolve_batch(events, {key: story.row}, {}, ExecutionRows(queue={key: story.queue}))
    assert changes.queue == {key: None}


def test_new_items_and_chunks_need_nothing_loaded():
    chunk = OutputChunk("team-1", "project-1", "task-1", "exec-1", 1, "stdout", "hi")
    events = numbered(ask().collect_events() + chunk.collect_events())
    keys = execution_keys(events)
    assert (keys.queue, keys.options, keys.hitl) == (set(), set(), set())
