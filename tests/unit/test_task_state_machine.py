"""Any sequence of task commands keeps the status machine and the event log consistent.

A hypothesis state machine drives every Task command against one task while keeping its own
model of the status machine (``domain.values.TRANSITIONS``). After each step it checks that the
status is what the model says, that a refused command raised a ``DomainError`` and changed
nothing, and that replaying the task's stored events (saved through a real ``Ledger`` on SQLite)
rebuilds exactly the live task.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from application.ledger import Ledger
from domain.errors import (
    DeletedError,
    DependencyCycleError,
    DependencyNotMetError,
    DomainError,
    InvalidTransitionError,
    RuleViolationError,
    TaskAlreadyRunningError,
)
from domain.task import UPDATABLE, Task
from domain.values import (
    ACTIVE,
    FINISHED_UNSUCCESSFULLY,
    MANUAL_TARGETS,
    TRANSITIONS,
    Actor,
    Priority,
    TaskStatus,
)
from infrastructure.event_store import ledger_env
from infrastructure.settings import Settings

S = TaskStatus
OUTCOMES = (S.COMPLETED, S.FAILED, S.TIMED_OUT, S.CANCELLED)
TAGS = st.lists(st.sampled_from(["bug", "ui", "api", "docs"]), max_size=3)
ACTORS = st.builds(
    Actor,
    id=st.sampled_from(["alice", "bob", "worker-1"]),
    team_id=st.just("team-1"),
    request_id=st.sampled_from(["", "req-1", "req-2"]),
)
REASONS = st.sampled_from([None, "by hand", "not needed", "approved"])

Expected = tuple[type[DomainError], ...]


def new_task(title: str = "first") -> Task:
    return Task(
        team_id="team-1",
        project_id="project-1",
        title=title,
        description="",
        priority=int(Priority.NORMAL),
        tags=[],
        metadata={},
        assigned_to=None,
        estimated_duration=None,
        slug=None,
        dependencies=[],
        repository_url=None,
        base_branch=None,
        ticket_id=None,
        ticket_summary=None,
        test_command=None,
        actor="creator",
        request_id="req-0",
    )


# statuses in which an execution is in progress (what the runner may report on)
EXECUTING = frozenset({S.RUNNING, S.NEEDS_INPUT, S.AWAITING_APPROVAL})


def move_error(current: S, target: S) -> Expected:
    """What ``Task._require_move`` raises, or nothing if the move is legal."""
    if target in TRANSITIONS[current]:
        return ()
    if current in ACTIVE and target in (S.QUEUED, S.RUNNING):
        return (TaskAlreadyRunningError,)
    return (InvalidTransitionError,)


@dataclass
class Model:
    status: S = S.PENDING
    deleted: bool = False
    approved: bool = False
    attempt: int = 0
    execution_id: str | None = None
    priority: int = int(Priority.NORMAL)
    assigned_to: str | None = None
    title: str = "first"
    progress: int = 0
    slug: str | None = None
    tags: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)


class TaskMachine(RuleBasedStateMachine):
    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger
        self.task = new_task()
        self.others = [new_task("other-1"), new_task("other-2")]
        self.model = Model()

    # ---- the harness -----------------------------------------------------------------------

    def run(self, command: Callable[[], Any], refused: Expected, events: int = 0) -> Any:
        """Runs ``command``; it must raise one of ``refused`` changing nothing, or record
        exactly ``events`` events."""
        before = copy.deepcopy(self.task.__dict__)
        version = self.task.version
        try:
            result = command()
        except DomainError as error:
            assert refused, f"refused unexpectedly: {error!r}"
            assert isinstance(error, refused), f"{error!r} is not one of {refused}"
            assert self.task.__dict__ == before, "a refused command changed the task"
            assert self.task.version == version
            return None
        assert not refused, f"accepted, but the model expected {refused}"
        assert self.task.version == version + events
        return result

    def live(self) -> Expected:
        return (DeletedError,) if self.model.deleted else ()

    # ---- plain edits -----------------------------------------------------------------------

    @rule(
        name=st.sampled_from(["title", "progress_percentage", "status", "priority"]),
        value=st.sampled_from(["first", "second", 0, 50]),
        by=ACTORS,
    )
    def update(self, name: str, value: Any, by: Actor) -> None:
        m = self.model
        attr = {"title": "title", "progress_percentage": "progress"}.get(name)
        refused = self.live() or (() if name in UPDATABLE else (RuleViolationError,))
        changed = attr is not None and getattr(m, attr) != value
        self.run(lambda: self.task.update({name: value}, by), refused, int(changed))
        if not refused and attr is not None:
            setattr(m, attr, value)

    @rule(tags=TAGS, by=ACTORS)
    def add_tags(self, tags: list[str], by: Actor) -> None:
        new = [t for t in dict.fromkeys(tags) if t not in self.model.tags]
        refused = self.live()
        self.run(lambda: self.task.add_tags(tags, by), refused, int(bool(new)))
        if not refused:
            self.model.tags += new

    @rule(tags=TAGS, by=ACTORS)
    def remove_tags(self, tags: list[str], by: Actor) -> None:
        gone = [t for t in self.model.tags if t in tags]
        refused = self.live()
        self.run(lambda: self.task.remove_tags(tags, by), refused, int(bool(gone)))
        if not refused:
            self.model.tags = [t for t in self.model.tags if t not in tags]

    @rule(who=st.sampled_from([None, "agent-1", "agent-2"]), by=ACTORS)
    def assign(self, who: str | None, by: Actor) -> None:
        refused = self.live()
        self.run(lambda: self.task.assign(who, by), refused, int(who != self.model.assigned_to))
        if not refused:
            self.model.assigned_to = who

    @rule(priority=st.sampled_from(Priority), by=ACTORS)
    def set_priority(self, priority: Priority, by: Actor) -> None:
        refused = self.live()
        changed = int(priority) != self.model.priority
        self.run(lambda: self.task.set_priority(priority, by), refused, int(changed))
        if not refused:
            self.model.priority = int(priority)

    @rule(slug=st.sampled_from([None, "a-slug", "b-slug"]), by=ACTORS)
    def change_slug(self, slug: str | None, by: Actor) -> None:
        refused = self.live()
        self.run(lambda: self.task.change_slug(slug, by), refused, int(slug != self.model.slug))
        if not refused:
            self.model.slug = slug

    @rule(reason=REASONS, by=ACTORS)
    def delete(self, reason: str | None, by: Actor) -> None:
        active = (TaskAlreadyRunningError,) if self.model.status in ACTIVE else ()
        refused = self.live() or active
        self.run(lambda: self.task.delete(reason, by), refused, 1)
        if not refused:
            self.model.deleted = True

    # ---- dependencies ----------------------------------------------------------------------

    @rule(which=st.integers(0, 2), reaches_me=st.booleans(), by=ACTORS)
    def add_dependency(self, which: int, reaches_me: bool, by: Actor) -> None:
        other = self.task if which == 2 else self.others[which]
        cycle = (DependencyCycleError,) if other is self.task or reaches_me else ()
        refused = self.live() or cycle
        new = str(other.id) not in self.model.dependencies
        self.run(lambda: self.task.add_dependency(other, reaches_me, by), refused, int(new))
        if not refused and new:
            self.model.dependencies.append(str(other.id))

    @rule(which=st.integers(0, 1), by=ACTORS)
    def remove_dependency(self, which: int, by: Actor) -> None:
        other_id = self.others[which].id
        present = str(other_id) in self.model.dependencies
        refused = self.live()
        self.run(lambda: self.task.remove_dependency(other_id, by), refused, int(present))
        if not refused:
            self.model.dependencies = [d for d in self.model.dependencies if d != str(other_id)]

    # ---- the status machine ----------------------------------------------------------------

    @rule(to=st.sampled_from(S), reason=REASONS, by=ACTORS)
    def change_status(self, to: S, reason: str | None, by: Actor) -> None:
        """A person's move: cancelled means cancel; a task in flight moves only by execution
        (except queued back to pending); the rest follows the transition table."""
        m = self.model
        if to == S.CANCELLED and not m.deleted and m.status != S.CANCELLED:
            command = lambda: self.task.change_status(to, reason, by)  # noqa: E731
            self.expect_cancel(command, returns=False)
            return
        if m.deleted:
            refused: Expected = (DeletedError,)
        elif to == m.status:
            refused = ()
        elif to not in MANUAL_TARGETS:
            refused = (InvalidTransitionError,)
        elif m.status in ACTIVE and not (m.status == S.QUEUED and to == S.PENDING):
            refused = (TaskAlreadyRunningError,)
        else:
            refused = move_error(m.status, to)
        events = int(to != m.status)
        self.run(lambda: self.task.change_status(to, reason, by), refused, events)
        if not refused:
            m.status = to

    @rule(
        retry=st.booleans(),
        unmet=st.sampled_from([False, False, True]),
        priority=st.none() | st.sampled_from(Priority),
        by=ACTORS,
    )
    def request_execution(
        self, retry: bool, unmet: bool, priority: Priority | None, by: Actor
    ) -> None:
        m = self.model
        if m.deleted:
            refused: Expected = (DeletedError,)
        elif retry and m.status not in FINISHED_UNSUCCESSFULLY:
            refused = (InvalidTransitionError,)
        elif m.status in ACTIVE:  # work in flight or awaiting review is never queued again
            refused = (TaskAlreadyRunningError,)
        else:
            refused = move_error(m.status, S.QUEUED) or ((DependencyNotMetError,) if unmet else ())
        unmet_ids = [str(uuid4())] if unmet else []
        execution_id = self.run(
            lambda: self.task.request_execution({}, priority, unmet_ids, by, retry=retry),
            refused,
            1,
        )
        if not refused:
            m.status, m.attempt, m.execution_id = S.QUEUED, m.attempt + 1, execution_id
            m.priority = int(priority) if priority is not None else m.priority
            assert not self.task.cancel_requested

    @rule(reason=REASONS, by=ACTORS)
    def cancel(self, reason: str | None, by: Actor) -> None:
        self.expect_cancel(lambda: self.task.cancel(reason, by), returns=True)

    def expect_cancel(self, command: Callable[[], Any], *, returns: bool) -> None:
        """Cancelled now if nothing runs; for a task in flight, only a request."""
        m = self.model
        now = m.status in (S.PENDING, S.QUEUED)
        if m.deleted:
            refused: Expected = (DeletedError,)
        elif now or m.status in ACTIVE:
            refused = ()
        else:
            refused = (InvalidTransitionError,)
        events = 1 if now else int(not self.task.cancel_requested)
        result = self.run(command, refused, events)
        if refused:
            return
        if returns:
            assert result is now
        if now:
            m.status = S.CANCELLED
        else:
            assert self.task.cancel_requested

    @rule(current=st.sampled_from([True, True, False]), by=ACTORS)
    def start_execution(self, current: bool, by: Actor) -> None:
        m = self.model
        execution_id: Any = m.execution_id if current else "some-other-execution"
        if m.deleted:
            refused: Expected = (DeletedError,)
        elif execution_id != m.execution_id:
            refused = (InvalidTransitionError,)
        else:
            refused = move_error(m.status, S.RUNNING)
        self.run(lambda: self.task.start_execution(execution_id, "worker-1", by), refused, 1)
        if not refused:
            m.status = S.RUNNING

    @rule(summary=REASONS, by=ACTORS)
    def request_review(self, summary: str | None, by: Actor) -> None:
        m = self.model
        if m.deleted:
            refused: Expected = (DeletedError,)
        elif m.status not in EXECUTING:
            refused = (InvalidTransitionError,)
        else:
            refused = move_error(m.status, S.AWAITING_APPROVAL)
        self.run(lambda: self.task.request_review(summary, by), refused, 1)
        if not refused:
            m.status = S.AWAITING_APPROVAL

    @rule(outcome=st.sampled_from(S), by=ACTORS)
    def finish_execution(self, outcome: S, by: Actor) -> None:
        m = self.model
        if outcome not in OUTCOMES:
            refused: Expected = (RuleViolationError,)
        elif m.deleted:
            refused = (DeletedError,)
        elif m.status not in EXECUTING:
            refused = (InvalidTransitionError,)
        else:
            refused = move_error(m.status, outcome)
        result = {"exit_code": 0 if outcome == S.COMPLETED else 1}
        self.run(lambda: self.task.finish_execution(outcome, result, by), refused, 1)
        if not refused:
            m.status = outcome
            m.progress = 100 if outcome == S.COMPLETED else m.progress

    @rule(comment=REASONS, by=ACTORS)
    def approve(self, comment: str | None, by: Actor) -> None:
        m = self.model
        again = m.status == S.COMPLETED and m.approved
        if m.deleted:
            refused: Expected = (DeletedError,)
        elif again or m.status == S.AWAITING_APPROVAL:
            refused = ()
        else:
            refused = (InvalidTransitionError,)
        result = self.run(lambda: self.task.approve(comment, by), refused, int(not again))
        if not refused:
            assert result is not again
        if not refused and not again:
            m.status, m.approved, m.progress = S.COMPLETED, True, 100

    @rule(reason=st.sampled_from(["tests fail", "wrong file"]), by=ACTORS)
    def reject(self, reason: str, by: Actor) -> None:
        m = self.model
        if m.deleted:
            refused: Expected = (DeletedError,)
        elif m.status != S.AWAITING_APPROVAL:
            refused = (InvalidTransitionError,)
        else:
            refused = ()
        execution_id = self.run(lambda: self.task.reject(reason, by), refused, 1)
        if not refused:
            assert execution_id != m.execution_id
            m.status, m.attempt, m.execution_id = S.QUEUED, m.attempt + 1, execution_id

    @rule(choices=st.lists(st.integers(0, 3), min_size=1, max_size=4), by=ACTORS)
    def advance(self, choices: list[int], by: Actor) -> None:
        """A few of the lifecycle's natural next commands, so that runs reach deep states."""
        for choice in choices:
            self.next_command(choice, by)

    def next_command(self, choice: int, by: Actor) -> None:
        status = self.model.status
        if status == S.PENDING:
            self.request_execution(False, False, None, by)
        elif status == S.QUEUED:
            self.start_execution(True, by)
        elif status == S.RUNNING and choice < 2:
            self.request_review("ready", by)
        elif status == S.RUNNING:
            self.finish_execution((S.COMPLETED, S.FAILED)[choice - 2], by)
        elif status == S.AWAITING_APPROVAL and choice % 2:
            self.approve("fine", by)
        elif status == S.AWAITING_APPROVAL:
            self.reject("tests fail", by)
        elif status in FINISHED_UNSUCCESSFULLY:
            self.request_execution(True, False, None, by)
        else:
            self.approve(None, by)

    # ---- what must always hold -------------------------------------------------------------

    @invariant()
    def the_task_is_what_the_model_says(self) -> None:
        m, t = self.model, self.task
        assert t.status == m.status.value
        assert (t.deleted, t.attempt, t.execution_id) == (m.deleted, m.attempt, m.execution_id)
        assert (t.priority, t.assigned_to, t.slug) == (m.priority, m.assigned_to, m.slug)
        assert (t.title, t.progress_percentage) == (m.title, m.progress)
        assert (t.tags, t.dependencies) == (m.tags, m.dependencies)

    @invariant()
    def replaying_the_stored_events_rebuilds_the_task(self) -> None:
        self.ledger.save(self.task)
        assert self.ledger.repository.get(self.task.id).__dict__ == self.task.__dict__

    @precondition(lambda self: self.model.status in ACTIVE)
    @invariant()
    def an_active_task_has_a_current_execution(self) -> None:
        assert self.task.execution_id is not None and self.task.attempt >= 1


def test_any_sequence_of_commands_keeps_the_task_consistent(tmp_path: Path) -> None:
    ledger = Ledger(env=ledger_env(Settings(data_dir=tmp_path), create_tables=True))
    try:
        run_state_machine_as_test(
            lambda: TaskMachine(ledger),
            settings=settings(
                max_examples=100,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        ledger.close()
