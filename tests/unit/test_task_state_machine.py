"""Any sequence of task commands keeps the status machine and the event log consistent.

A hypothesis state machine drives every Task command against one task, the runner's facts
included (start with a lease, lease renewal, progress, phases, usage, waiting on a question or a
checkpoint and resuming, expiry in the queue, review), while keeping its own model of the task
(the status machine of ``domain.values.TRANSITIONS``, who holds the execution, what the agent waits
for, usage totals and phases). After each step it checks that the task is what the model says,
that a refused command raised the documented error class and changed nothing, that an accepted
one recorded exactly the expected events, and that replaying the task's stored events (saved
through a real ``Ledger`` on SQLite) rebuilds exactly the live task, and that the same stored
events, folded in memory through the projection's batch (from where the last step left off, as the
runner does), give a listing row equal to the task's own representation (``task_data``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import msgspec
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
from application.representations import task_data
from domain.errors import (
    DeletedError,
    DependencyCycleError,
    DependencyNotMetError,
    DomainError,
    InvalidTransitionError,
    RuleViolationError,
    TaskAlreadyRunningError,
)
from domain.execution_policy import ExecutionPolicy
from domain.task import UPDATABLE, Task
from domain.usage import Usage
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
from projections.batch import evolve_batch
from projections.rows import TaskRow
from projections.tasks import API_FIELDS
from tests.builders import a_task

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
CURRENT = st.sampled_from([True, True, False])  # the current execution, or another one
WORKERS = st.sampled_from(["worker-1", "worker-2"])
MOMENTS = st.sampled_from([datetime(2030, 1, 1, 12, minute, tzinfo=UTC) for minute in (0, 5, 10)])
AT = datetime(2030, 1, 1, 11, 0, tzinfo=UTC)  # the moment a handler gives a stamped change
ITEMS = st.sampled_from(["item-1", "item-2"])
KINDS = st.sampled_from(["question", "checkpoint"])
PHASE_NAMES = st.sampled_from(["plan", "code", "test"])
PHASE_STATUSES = st.sampled_from(["started", "completed", "failed"])
TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
USAGE = st.fixed_dictionaries(
    {},
    optional={
        **dict.fromkeys(TOKENS, st.integers(0, 5000)),
        "cost_usd": st.sampled_from([0.0, 0.01, 0.125, 1.1]),
        "model": st.sampled_from([None, "opus", "sonnet"]),
    },
)
RESULTS = st.none() | st.fixed_dictionaries({"branch": st.sampled_from(["fix", "feature"])})

Expected = tuple[type[DomainError], ...]


def new_task(title: str = "first") -> Task:
    return a_task(title=title)


# statuses in which an execution is in progress (what the runner may report on)
EXECUTING = frozenset({S.RUNNING, S.NEEDS_INPUT, S.AWAITING_APPROVAL})


def move_error(current: S, target: S) -> Expected:
    """What ``Task._require_move`` raises, or nothing if the move is legal."""
    if target in TRANSITIONS[current]:
        return ()
    if current in ACTIVE and target in (S.QUEUED, S.RUNNING):
        return (TaskAlreadyRunningError,)
    return (InvalidTransitionError,)


def no_usage() -> dict[str, Any]:
    counts = dict.fromkeys((*TOKENS, "cache_creation_tokens", "reasoning_tokens", "requests"), 0)
    return {**counts, "cost_usd": 0.0, "reported_cost_usd": 0.0, "models": []}


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
    cancel_requested: bool = False
    result: dict[str, Any] | None = None
    worker_id: str | None = None  # the worker that holds the execution: its agent is alive
    lease_until: datetime | None = None
    waiting_on: str | None = None
    usage: dict[str, Any] = field(default_factory=no_usage)
    phases: dict[str, str] = field(default_factory=dict)  # name: status, in first-seen order

    def agent_gone(self) -> None:
        self.worker_id = self.lease_until = self.waiting_on = None


class TaskMachine(RuleBasedStateMachine):
    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger
        self.task = new_task()
        self.others = [new_task("other-1"), new_task("other-2")]
        self.model = Model()
        self.row: TaskRow | None = None  # the task's listing row, folded up to ``folded``
        self.folded = 0

    # ---- the harness -----------------------------------------------------------------------

    def run(self, command: Callable[[], Any], refused: Expected, recorded: list[str]) -> Any:
        """Runs ``command``; it must raise exactly one of ``refused`` changing nothing, or
        record exactly the events named in ``recorded``."""
        before = copy.deepcopy(self.task.__dict__)
        version, pending = self.task.version, len(self.task.pending_events)
        try:
            result = command()
        except DomainError as error:
            assert refused, f"refused unexpectedly: {error!r}"
            assert type(error) in refused, f"{error!r} is not one of {refused}"
            assert self.task.__dict__ == before, "a refused command changed the task"
            assert self.task.version == version
            return None
        assert not refused, f"accepted, but the model expected {refused}"
        names = [type(e).__name__ for e in self.task.pending_events[pending:]]
        assert names == recorded
        assert self.task.version == version + len(recorded)
        return result

    def live(self) -> Expected:
        return (DeletedError,) if self.model.deleted else ()

    def execution(self, current: bool) -> Any:
        return self.model.execution_id if current else "some-other-execution"

    def executing_error(self) -> Expected:
        """What ``Task._require_executing`` raises: an execution must be in progress."""
        if self.model.deleted:
            return (DeletedError,)
        return () if self.model.status in EXECUTING else (InvalidTransitionError,)

    def reporting_error(self, execution_id: Any) -> Expected:
        """What ``Task._require_current`` raises: the runner reports only on the execution a
        worker holds (not on work in review, whose agent is gone)."""
        m = self.model
        if self.executing_error():
            return self.executing_error()
        if execution_id != m.execution_id or m.worker_id is None:
            return (InvalidTransitionError,)
        return ()

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
        self.run(lambda: self.task.update({name: value}, by), refused, ["Updated"] * changed)
        if not refused and attr is not None:
            setattr(m, attr, value)

    @rule(tags=TAGS, by=ACTORS)
    def add_tags(self, tags: list[str], by: Actor) -> None:
        new = [t for t in dict.fromkeys(tags) if t not in self.model.tags]
        refused = self.live()
        self.run(lambda: self.task.add_tags(tags, by), refused, ["TagsAdded"] * bool(new))
        if not refused:
            self.model.tags += new

    @rule(tags=TAGS, by=ACTORS)
    def remove_tags(self, tags: list[str], by: Actor) -> None:
        gone = [t for t in self.model.tags if t in tags]
        refused = self.live()
        self.run(lambda: self.task.remove_tags(tags, by), refused, ["TagsRemoved"] * bool(gone))
        if not refused:
            self.model.tags = [t for t in self.model.tags if t not in tags]

    @rule(who=st.sampled_from([None, "agent-1", "agent-2"]), by=ACTORS)
    def assign(self, who: str | None, by: Actor) -> None:
        refused = self.live()
        changed = who != self.model.assigned_to
        self.run(lambda: self.task.assign(who, by), refused, ["Assigned"] * changed)
        if not refused:
            self.model.assigned_to = who

    @rule(priority=st.sampled_from(Priority), by=ACTORS)
    def set_priority(self, priority: Priority, by: Actor) -> None:
        refused = self.live()
        changed = int(priority) != self.model.priority
        self.run(lambda: self.task.set_priority(priority, by), refused, ["PrioritySet"] * changed)
        if not refused:
            self.model.priority = int(priority)

    @rule(slug=st.sampled_from([None, "a-slug", "b-slug"]), by=ACTORS)
    def change_slug(self, slug: str | None, by: Actor) -> None:
        refused = self.live()
        changed = slug != self.model.slug
        self.run(lambda: self.task.change_slug(slug, by), refused, ["SlugChanged"] * changed)
        if not refused:
            self.model.slug = slug

    @rule(reason=REASONS, go_ahead=st.sampled_from([True, False, False]), by=ACTORS)
    def delete(self, reason: str | None, go_ahead: bool, by: Actor) -> None:
        """A deleted task refuses everything: deletion goes ahead only one time in three, so
        that runs live long enough to reach deep states."""
        if not go_ahead:
            return
        active = (TaskAlreadyRunningError,) if self.model.status in ACTIVE else ()
        refused = self.live() or active
        self.run(lambda: self.task.delete(reason, by), refused, ["Deleted"])
        if not refused:
            self.model.deleted = True

    @precondition(lambda self: self.model.deleted)
    @rule()
    def start_over(self) -> None:
        """Once a deleted task has refused a few commands, the run goes on with a new one."""
        self.task, self.model = new_task(), Model()
        self.row, self.folded = None, 0

    # ---- dependencies ----------------------------------------------------------------------

    @rule(which=st.integers(0, 2), reaches_me=st.booleans(), by=ACTORS)
    def add_dependency(self, which: int, reaches_me: bool, by: Actor) -> None:
        other = self.task if which == 2 else self.others[which]
        cycle = (DependencyCycleError,) if other is self.task or reaches_me else ()
        refused = self.live() or cycle
        new = str(other.id) not in self.model.dependencies
        self.run(
            lambda: self.task.add_dependency(other, reaches_me, by),
            refused,
            ["DependencyAdded"] * new,
        )
        if not refused and new:
            self.model.dependencies.append(str(other.id))

    @rule(which=st.integers(0, 1), by=ACTORS)
    def remove_dependency(self, which: int, by: Actor) -> None:
        other_id = self.others[which].id
        present = str(other_id) in self.model.dependencies
        refused = self.live()
        self.run(
            lambda: self.task.remove_dependency(other_id, by),
            refused,
            ["DependencyRemoved"] * present,
        )
        if not refused:
            self.model.dependencies = [d for d in self.model.dependencies if d != str(other_id)]

    # ---- the status machine ----------------------------------------------------------------

    @rule(to=st.sampled_from(S), reason=REASONS, by=ACTORS)
    def change_status(self, to: S, reason: str | None, by: Actor) -> None:
        """A person's move: cancelled means cancel; a task in flight moves only by execution
        (except queued back to pending); the rest follows the transition table."""
        m = self.model
        if to == S.CANCELLED and not m.deleted and m.status != S.CANCELLED:
            command = lambda: self.task.change_status(to, reason, by, at=AT)  # noqa: E731
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
        recorded = ["StatusChanged"] * (to != m.status)
        self.run(lambda: self.task.change_status(to, reason, by, at=AT), refused, recorded)
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
            lambda: self.task.request_execution(
                ExecutionPolicy(), priority, unmet_ids, by, retry=retry
            ),
            refused,
            ["ExecutionRequested"],
        )
        if not refused:
            m.status, m.attempt, m.execution_id = S.QUEUED, m.attempt + 1, execution_id
            m.priority = int(priority) if priority is not None else m.priority
            m.cancel_requested, m.result = False, None

    @rule(reason=REASONS, by=ACTORS)
    def cancel(self, reason: str | None, by: Actor) -> None:
        self.expect_cancel(lambda: self.task.cancel(reason, by, at=AT), returns=True)

    def expect_cancel(self, command: Callable[[], Any], *, returns: bool) -> None:
        """Cancelled now if no agent is left to stop (nothing runs yet, or the work waits in
        review); for an agent at work (running or waiting on people), only a request."""
        m = self.model
        in_review = m.status == S.AWAITING_APPROVAL and m.worker_id is None
        now = m.status in (S.PENDING, S.QUEUED) or in_review
        if m.deleted:
            refused: Expected = (DeletedError,)
        elif now or m.status in ACTIVE:
            refused = ()
        else:
            refused = (InvalidTransitionError,)
        if now:
            recorded = ["Cancelled"]
        else:
            recorded = ["CancelRequested"] * (not m.cancel_requested)
        result = self.run(command, refused, recorded)
        if refused:
            return
        if returns:
            assert result is now
        if now:
            m.status = S.CANCELLED
        else:
            m.cancel_requested = True

    # ---- execution facts (recorded by the runner) --------------------------------------------

    @rule(current=CURRENT, worker=WORKERS, lease=st.none() | MOMENTS, by=ACTORS)
    def start_execution(
        self, current: bool, worker: str, lease: datetime | None, by: Actor
    ) -> None:
        m = self.model
        execution_id = self.execution(current)
        if m.deleted:
            refused: Expected = (DeletedError,)
        elif m.status in EXECUTING:
            refused = (TaskAlreadyRunningError,)
        elif execution_id != m.execution_id:
            refused = (InvalidTransitionError,)
        else:
            refused = move_error(m.status, S.RUNNING)
        self.run(
            lambda: self.task.start_execution(execution_id, worker, by, lease_until=lease, at=AT),
            refused,
            ["ExecutionStarted"],
        )
        if not refused:
            m.status, m.worker_id, m.lease_until, m.waiting_on = S.RUNNING, worker, lease, None
            m.phases = {}

    @rule(current=CURRENT, until=MOMENTS, by=ACTORS)
    def renew_lease(self, current: bool, until: datetime, by: Actor) -> None:
        execution_id = self.execution(current)
        refused = self.reporting_error(execution_id)
        self.run(lambda: self.task.renew_lease(execution_id, until, by), refused, ["LeaseRenewed"])
        if not refused:
            self.model.lease_until = until

    @rule(
        current=CURRENT,
        percentage=st.none() | st.sampled_from([0, 10, 55, 100]),
        message=st.none() | st.just("compiling"),
        by=ACTORS,
    )
    def report_progress(
        self, current: bool, percentage: int | None, message: str | None, by: Actor
    ) -> None:
        execution_id = self.execution(current)
        refused = self.reporting_error(execution_id)
        self.run(
            lambda: self.task.report_progress(execution_id, percentage, message, by),
            refused,
            ["ProgressReported"],
        )
        if not refused and percentage is not None:
            self.model.progress = percentage

    @rule(current=CURRENT, name=PHASE_NAMES, status=PHASE_STATUSES, by=ACTORS)
    def change_phase(self, current: bool, name: str, status: str, by: Actor) -> None:
        execution_id = self.execution(current)
        refused = self.reporting_error(execution_id)
        self.run(
            lambda: self.task.change_phase(execution_id, name, status, by, at=AT),
            refused,
            ["PhaseChanged"],
        )
        if not refused:
            self.model.phases[name] = status

    @rule(current=CURRENT, usage=USAGE, by=ACTORS)
    def record_usage(self, current: bool, usage: dict[str, Any], by: Actor) -> None:
        execution_id = self.execution(current)
        refused = self.reporting_error(execution_id)
        self.run(
            lambda: self.task.record_usage(execution_id, Usage(**usage), by),
            refused,
            ["UsageRecorded"],
        )
        if refused:
            return
        totals = self.model.usage
        for key in TOKENS:
            totals[key] += usage.get(key, 0)
        totals["cache_creation_tokens"] = totals["cache_write_tokens"]
        totals["requests"] += 1
        totals["cost_usd"] = round(totals["cost_usd"] + usage.get("cost_usd", 0.0), 8)
        model = usage.get("model")
        if model is not None and model not in totals["models"]:
            totals["models"].append(model)

    @rule(current=CURRENT, item=ITEMS, kind=KINDS, by=ACTORS)
    def wait_for(self, current: bool, item: str, kind: str, by: Actor) -> None:
        m = self.model
        execution_id = self.execution(current)
        refused = self.reporting_error(execution_id)
        if not refused and m.status != S.RUNNING:  # the agent already waits
            refused = (InvalidTransitionError,)
        self.run(
            lambda: self.task.wait_for(execution_id, item, kind, by), refused, ["InputRequested"]
        )
        if not refused:
            m.status = S.NEEDS_INPUT if kind == "question" else S.AWAITING_APPROVAL
            m.waiting_on = item

    @rule(which=st.sampled_from(["waited on", "waited on", "item-1", "item-2"]), by=ACTORS)
    def resume(self, which: str, by: Actor) -> None:
        m = self.model
        item = (m.waiting_on or "item-1") if which == "waited on" else which
        refused = self.executing_error()
        if not refused and m.waiting_on != item:
            refused = (InvalidTransitionError,)
        self.run(lambda: self.task.resume(item, by), refused, ["Resumed"])
        if not refused:
            m.status, m.waiting_on = S.RUNNING, None

    @rule(current=CURRENT, by=ACTORS)
    def expire_in_queue(self, current: bool, by: Actor) -> None:
        m = self.model
        execution_id = self.execution(current)
        if m.deleted:
            refused: Expected = (DeletedError,)
        elif execution_id != m.execution_id or m.status != S.QUEUED:
            refused = (InvalidTransitionError,)
        else:
            refused = ()
        self.run(
            lambda: self.task.expire_in_queue(execution_id, by, at=AT),
            refused,
            ["ExpiredInQueue"],
        )
        if not refused:
            m.status = S.TIMED_OUT

    @rule(summary=REASONS, result=RESULTS, by=ACTORS)
    def request_review(self, summary: str | None, result: dict[str, Any] | None, by: Actor) -> None:
        m = self.model
        refused = self.executing_error()
        if not refused and m.status != S.RUNNING:  # the agent still waits on people
            refused = (InvalidTransitionError,)
        refused = refused or move_error(m.status, S.AWAITING_APPROVAL)
        self.run(
            lambda: self.task.request_review(summary, by, result=result),
            refused,
            ["ReviewRequested"],
        )
        if not refused:
            m.status = S.AWAITING_APPROVAL
            m.result = result if result is not None else m.result
            m.agent_gone()

    @rule(outcome=st.sampled_from(S), by=ACTORS)
    def finish_execution(self, outcome: S, by: Actor) -> None:
        m = self.model
        if outcome not in OUTCOMES:
            refused: Expected = (RuleViolationError,)
        else:
            refused = self.executing_error() or move_error(m.status, outcome)
        result = {"exit_code": 0 if outcome == S.COMPLETED else 1}
        self.run(
            lambda: self.task.finish_execution(outcome, result, by, at=AT),
            refused,
            ["ExecutionFinished"],
        )
        if not refused:
            m.status, m.result = outcome, result
            m.progress = 100 if outcome == S.COMPLETED else m.progress
            m.agent_gone()

    # ---- review of finished work -----------------------------------------------------------

    def review_error(self) -> Expected:
        """Work in review is decided; not while the agent waits on a checkpoint."""
        m = self.model
        if m.deleted:
            return (DeletedError,)
        if m.status != S.AWAITING_APPROVAL or m.waiting_on is not None:
            return (InvalidTransitionError,)
        return ()

    @rule(comment=REASONS, by=ACTORS)
    def approve(self, comment: str | None, by: Actor) -> None:
        m = self.model
        again = m.status == S.COMPLETED and m.approved and not m.deleted
        refused = () if again else self.review_error()
        recorded = [] if again else ["WorkApproved"]
        result = self.run(lambda: self.task.approve(comment, by, at=AT), refused, recorded)
        if not refused:
            assert result is not again
        if not refused and not again:
            m.status, m.approved, m.progress = S.COMPLETED, True, 100

    @rule(reason=st.sampled_from(["tests fail", "wrong file"]), by=ACTORS)
    def reject(self, reason: str, by: Actor) -> None:
        m = self.model
        refused = self.review_error()
        execution_id = self.run(lambda: self.task.reject(reason, by), refused, ["WorkRejected"])
        if not refused:
            assert execution_id != m.execution_id
            m.status, m.attempt, m.execution_id = S.QUEUED, m.attempt + 1, execution_id
            m.result, m.cancel_requested = None, False

    # ---- the lifecycle's natural path --------------------------------------------------------

    @rule(choices=st.lists(st.integers(0, 5), min_size=1, max_size=8), by=ACTORS)
    def advance(self, choices: list[int], by: Actor) -> None:
        """A few of the lifecycle's natural next commands, so that runs reach deep states."""
        for choice in choices:
            self.next_command(choice, by)

    def next_command(self, choice: int, by: Actor) -> None:
        m = self.model
        status = m.status
        if status == S.PENDING:
            self.request_execution(False, False, None, by)
        elif status == S.QUEUED and choice == 5:
            self.expire_in_queue(True, by)
        elif status == S.QUEUED:
            self.start_execution(True, "worker-1", datetime(2030, 1, 1, tzinfo=UTC), by)
        elif status == S.RUNNING:
            self.next_while_running(choice, by)
        elif status == S.NEEDS_INPUT or (status == S.AWAITING_APPROVAL and m.waiting_on):
            self.next_while_waiting(choice, by)
        elif status == S.AWAITING_APPROVAL and choice == 4:
            self.cancel("not wanted", by)
        elif status == S.AWAITING_APPROVAL and choice % 2:
            self.approve("fine", by)
        elif status == S.AWAITING_APPROVAL:
            self.reject("tests fail", by)
        elif status in FINISHED_UNSUCCESSFULLY:
            self.request_execution(True, False, None, by)
        else:
            self.approve(None, by)

    def next_while_running(self, choice: int, by: Actor) -> None:
        if choice == 0:
            self.request_review("ready", {"branch": "fix"}, by)
        elif choice == 1:
            self.finish_execution(S.COMPLETED, by)
        elif choice == 2:
            self.wait_for(True, "item-1", "question", by)
        elif choice == 3:
            self.wait_for(True, "item-2", "checkpoint", by)
        elif choice == 4:
            self.renew_lease(True, datetime(2030, 1, 1, 12, 5, tzinfo=UTC), by)
            self.report_progress(True, 55, "halfway", by)
            self.change_phase(True, "code", "started", by)
            self.record_usage(True, {"input_tokens": 10, "cost_usd": 0.01, "model": "opus"}, by)
        else:
            self.finish_execution(S.FAILED, by)

    def next_while_waiting(self, choice: int, by: Actor) -> None:
        if choice == 3:  # a reviewer who mistakes a checkpoint for finished work
            self.approve("looks fine", by)
            self.reject("wrong file", by)
        elif choice == 4:
            self.renew_lease(True, datetime(2030, 1, 1, 12, 10, tzinfo=UTC), by)
        elif choice == 5:
            self.cancel("stop", by)
        else:
            self.resume("waited on", by)

    # ---- what must always hold -------------------------------------------------------------

    @invariant()
    def the_task_is_what_the_model_says(self) -> None:
        m, t = self.model, self.task
        assert t.status == m.status.value
        assert (t.deleted, t.attempt, t.execution_id) == (m.deleted, m.attempt, m.execution_id)
        assert (t.priority, t.assigned_to, t.slug) == (m.priority, m.assigned_to, m.slug)
        assert (t.title, t.progress_percentage) == (m.title, m.progress)
        assert (t.tags, t.dependencies) == (m.tags, m.dependencies)
        assert (t.cancel_requested, t.result) == (m.cancel_requested, m.result)

    @invariant()
    def who_runs_it_and_what_it_waits_for_are_what_the_model_says(self) -> None:
        m, t = self.model, self.task
        assert (t.worker_id, t.lease_until, t.waiting_on) == (
            m.worker_id,
            m.lease_until,
            m.waiting_on,
        )
        assert t.usage == m.usage
        assert [(p["name"], p["status"]) for p in t.phases] == list(m.phases.items())
        for phase in t.phases:
            assert phase["started_at"] is not None
            assert phase["status"] == "started" or phase["finished_at"] is not None

    @invariant()
    def an_agent_holds_the_execution_exactly_while_it_runs_or_waits_on_people(self) -> None:
        t = self.task
        waits = {S.NEEDS_INPUT: True, S.AWAITING_APPROVAL: t.waiting_on is not None}
        agent_alive = t.status == S.RUNNING.value or waits.get(t.status_enum, False)
        assert (t.worker_id is not None) == agent_alive
        assert (t.waiting_on is not None) == (t.status_enum in waits and agent_alive)
        assert t.worker_id is not None or t.lease_until is None

    @invariant()
    def replaying_the_stored_events_rebuilds_the_task(self) -> None:
        self.ledger.save(self.task)
        assert self.ledger.repository.get(self.task.id).__dict__ == self.task.__dict__

    @invariant()
    def the_projected_row_is_the_representation_of_the_task(self) -> None:
        """The row folds only the events stored since the last step, onto the last row."""
        self.ledger.save(self.task)
        key = str(self.task.id)
        stored = self.ledger.repository.event_store.get(self.task.id, gt=self.folded)
        batch = [(e.originator_version, e) for e in stored]
        if batch:
            loaded = {} if self.row is None else {key: self.row}
            self.row = evolve_batch(batch, loaded, {}).tasks[key]
            self.folded = batch[-1][0]
        if self.task.deleted:
            assert self.row is None
            return
        assert self.row is not None
        row, data = msgspec.structs.asdict(self.row), task_data(self.task)
        assert {f: row[f] for f in API_FIELDS} == {f: data[f] for f in API_FIELDS}
        assert (self.row.team_id, self.row.position) == (self.task.team_id, self.task.version)

    @precondition(lambda self: self.model.status in ACTIVE)
    @invariant()
    def an_active_task_has_a_current_execution(self) -> None:
        assert self.task.execution_id is not None and self.task.attempt >= 1


def test_any_sequence_of_commands_keeps_the_task_consistent() -> None:
    ledger = Ledger(env=ledger_env(Settings(memory_store=True), create_tables=True))
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
