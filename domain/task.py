"""The Task aggregate: what to do, where, and the status machine that governs it.

Public methods decide (check rules, compute values, may raise); the private ``@event`` methods
declare the events and their fields. What an event does to the task is defined once, in
``domain.task_state``: every event, live or replayed, is folded into the aggregate's ``state`` by
``evolve``, and the task projection folds the same events through the same function.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID, uuid4

from eventsourcing.domain import event

from domain import task_state as fold
from domain.errors import (
    DeletedError,
    DependencyCycleError,
    DependencyNotMetError,
    InvalidTransitionError,
    RuleViolationError,
    TaskAlreadyRunningError,
)
from domain.execution_policy import ExecutionPolicy
from domain.place import IN_PROJECT, Placed
from domain.task_state import NO_USAGE, TaskState
from domain.usage import Usage, from_old_shape
from domain.values import (
    ACTIVE,
    FINISHED_UNSUCCESSFULLY,
    MANUAL_TARGETS,
    TRANSITIONS,
    Actor,
    Priority,
    TaskStatus,
)

__all__ = ["NO_USAGE", "UPDATABLE", "Task", "TaskState", "evolve"]


# Fields a plain update may change; anything else has its own command.
UPDATABLE = frozenset(
    {
        "title",
        "description",
        "metadata",
        "estimated_duration",
        "progress_percentage",
        "repository_url",
        "base_branch",
        "ticket_id",
        "ticket_summary",
        "test_command",
    }
)


class Task(Placed):
    """A unit of agent work inside a project."""

    state: TaskState

    class Event(Placed.Event):
        """Every task event, live or replayed, evolves the task's state through ``evolve``
        (the library calls ``apply`` after the ``@event`` method, whose body is empty); each
        names its team and project (``domain.place``)."""

        PLACE = IN_PROJECT
        project_id: str

        def apply(self, aggregate: Any) -> None:
            aggregate.state = evolve(getattr(aggregate, "state", None), self)

    if TYPE_CHECKING:  # made at run time by the @event decorators below; fields typed Any
        Updated: ClassVar[type[Any]]
        TagsAdded: ClassVar[type[Any]]
        TagsRemoved: ClassVar[type[Any]]
        Assigned: ClassVar[type[Any]]
        PrioritySet: ClassVar[type[Any]]
        SlugChanged: ClassVar[type[Any]]
        Deleted: ClassVar[type[Any]]
        DependencyAdded: ClassVar[type[Any]]
        DependencyRemoved: ClassVar[type[Any]]
        StatusChanged: ClassVar[type[Any]]
        ExecutionRequested: ClassVar[type[Any]]
        Cancelled: ClassVar[type[Any]]
        CancelRequested: ClassVar[type[Any]]
        ExecutionStarted: ClassVar[type[Any]]
        LeaseRenewed: ClassVar[type[Any]]
        ProgressReported: ClassVar[type[Any]]
        PhaseChanged: ClassVar[type[Any]]
        InputRequested: ClassVar[type[Any]]
        Resumed: ClassVar[type[Any]]
        ExpiredInQueue: ClassVar[type[Any]]
        ReviewRequested: ClassVar[type[Any]]
        ExecutionFinished: ClassVar[type[Any]]
        WorkApproved: ClassVar[type[Any]]
        WorkRejected: ClassVar[type[Any]]

    @event("Created")
    def __init__(  # noqa: PLR0913
        self,
        *,
        team_id: str,
        project_id: str,
        title: str,
        description: str,
        priority: int,
        tags: list[str],
        metadata: dict[str, Any],
        assigned_to: str | None,
        estimated_duration: float | None,
        slug: str | None,
        dependencies: list[str],
        repository_url: str | None,
        base_branch: str | None,
        ticket_id: str | None,
        ticket_summary: str | None,
        test_command: str | None,
        actor: str,
        request_id: str,
    ) -> None:
        ...

    # ---- reading the state -----------------------------------------------------------------

    @property
    def team_id(self) -> str:
        return self.state.team_id

    @property
    def project_id(self) -> str:
        return self.state.project_id

    @property
    def title(self) -> str:
        return self.state.title

    @property
    def description(self) -> str:
        return self.state.description

    @property
    def priority(self) -> int:
        return self.state.priority

    @property
    def tags(self) -> list[str]:
        return self.state.tags

    @property
    def metadata(self) -> dict[str, Any]:
        return self.state.metadata

    @property
    def assigned_to(self) -> str | None:
        return self.state.assigned_to

    @property
    def estimated_duration(self) -> float | None:
        return self.state.estimated_duration

    @property
    def slug(self) -> str | None:
        return self.state.slug

    @property
    def dependencies(self) -> list[str]:
        return self.state.dependencies

    @property
    def repository_url(self) -> str | None:
        return self.state.repository_url

    @property
    def base_branch(self) -> str | None:
        return self.state.base_branch

    @property
    def ticket_id(self) -> str | None:
        return self.state.ticket_id

    @property
    def ticket_summary(self) -> str | None:
        return self.state.ticket_summary

    @property
    def test_command(self) -> str | None:
        return self.state.test_command

    @property
    def created_by(self) -> str:
        return self.state.created_by

    @property
    def status(self) -> str:
        return self.state.status

    @property
    def progress_percentage(self) -> int:
        return self.state.progress_percentage

    @property
    def deleted(self) -> bool:
        return self.state.deleted

    @property
    def deleted_reason(self) -> str | None:
        return self.state.deleted_reason

    @property
    def attempt(self) -> int:
        return self.state.attempt

    @property
    def execution_id(self) -> str | None:
        return self.state.execution_id

    @property
    def execution_options(self) -> dict[str, Any]:
        return self.state.execution_options

    @property
    def policy(self) -> ExecutionPolicy:
        """The current execution's options, typed."""
        return ExecutionPolicy.of(self.state.execution_options)

    @property
    def cancel_requested(self) -> bool:
        return self.state.cancel_requested

    @property
    def started_at(self) -> datetime | None:
        return self.state.started_at

    @property
    def completed_at(self) -> datetime | None:
        return self.state.completed_at

    @property
    def result(self) -> dict[str, Any] | None:
        return self.state.result

    @property
    def last_reason(self) -> str | None:
        return self.state.last_reason

    @property
    def approved(self) -> bool:
        return self.state.approved

    @property
    def worker_id(self) -> str | None:
        return self.state.worker_id

    @property
    def lease_until(self) -> datetime | None:
        return self.state.lease_until

    @property
    def waiting_on(self) -> str | None:
        return self.state.waiting_on

    @property
    def phases(self) -> list[dict[str, Any]]:
        return self.state.phases

    @property
    def usage(self) -> dict[str, Any]:
        return self.state.usage

    # ---- reading helpers -------------------------------------------------------------------

    @property
    def status_enum(self) -> TaskStatus:
        return TaskStatus(self.status)

    def _require_live(self) -> None:
        if self.deleted:
            raise DeletedError("task was deleted", task_id=str(self.id))

    def _require_move(self, target: TaskStatus) -> None:
        current = self.status_enum
        if target not in TRANSITIONS[current]:
            if current in ACTIVE and target in (TaskStatus.QUEUED, TaskStatus.RUNNING):
                raise TaskAlreadyRunningError(
                    f"task is already {current.value}", status=current.value
                )
            raise InvalidTransitionError(
                f"a task cannot move from {current.value} to {target.value}",
                status=current.value,
                target=target.value,
            )

    # ---- plain edits -----------------------------------------------------------------------

    def update(self, changes: dict[str, Any], by: Actor) -> None:
        self._require_live()
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise RuleViolationError("fields cannot be updated here", fields=sorted(unknown))
        effective = {k: v for k, v in changes.items() if getattr(self, k) != v}
        if effective:
            self._updated(changes=effective, actor=by.id, request_id=by.request_id)

    @event("Updated")
    def _updated(self, changes: dict[str, Any], actor: str, request_id: str) -> None:
        ...

    def add_tags(self, tags: list[str], by: Actor) -> None:
        self._require_live()
        new = [t for t in dict.fromkeys(tags) if t not in self.tags]
        if new:
            self._tags_added(tags=new, actor=by.id, request_id=by.request_id)

    @event("TagsAdded")
    def _tags_added(self, tags: list[str], actor: str, request_id: str) -> None:
        ...

    def remove_tags(self, tags: list[str], by: Actor) -> None:
        self._require_live()
        gone = [t for t in dict.fromkeys(tags) if t in self.tags]
        if gone:
            self._tags_removed(tags=gone, actor=by.id, request_id=by.request_id)

    @event("TagsRemoved")
    def _tags_removed(self, tags: list[str], actor: str, request_id: str) -> None:
        ...

    def assign(self, assigned_to: str | None, by: Actor) -> None:
        self._require_live()
        if assigned_to != self.assigned_to:
            self._assigned(assigned_to=assigned_to, actor=by.id, request_id=by.request_id)

    @event("Assigned")
    def _assigned(self, assigned_to: str | None, actor: str, request_id: str) -> None:
        ...

    def set_priority(self, priority: Priority, by: Actor) -> None:
        self._require_live()
        if int(priority) != self.priority:
            self._priority_set(priority=int(priority), actor=by.id, request_id=by.request_id)

    @event("PrioritySet")
    def _priority_set(self, priority: int, actor: str, request_id: str) -> None:
        ...

    def change_slug(self, slug: str | None, by: Actor) -> None:
        self._require_live()
        if slug != self.slug:
            self._slug_changed(slug=slug, actor=by.id, request_id=by.request_id)

    @event("SlugChanged")
    def _slug_changed(self, slug: str | None, actor: str, request_id: str) -> None:
        ...

    def delete(self, reason: str | None, by: Actor) -> None:
        self._require_live()
        if self.status_enum in ACTIVE:
            raise TaskAlreadyRunningError(
                f"a {self.status} task cannot be deleted; cancel it first", status=self.status
            )
        self._deleted(reason=reason, actor=by.id, request_id=by.request_id)

    @event("Deleted")
    def _deleted(self, reason: str | None, actor: str, request_id: str) -> None:
        ...

    # ---- dependencies ----------------------------------------------------------------------

    def add_dependency(self, other: Task, reaches_me: bool, by: Actor) -> None:
        """``reaches_me``: the other task already depends, directly or not, on this one."""
        self._require_live()
        other_id = str(other.id)
        if other.id == self.id or reaches_me:
            raise DependencyCycleError("dependencies may not form a cycle", task_id=other_id)
        if other_id not in self.dependencies:
            self._dependency_added(task_id=other_id, actor=by.id, request_id=by.request_id)

    @event("DependencyAdded")
    def _dependency_added(self, task_id: str, actor: str, request_id: str) -> None:
        ...

    def remove_dependency(self, task_id: UUID, by: Actor) -> None:
        self._require_live()
        if str(task_id) in self.dependencies:
            self._dependency_removed(task_id=str(task_id), actor=by.id, request_id=by.request_id)

    @event("DependencyRemoved")
    def _dependency_removed(self, task_id: str, actor: str, request_id: str) -> None:
        ...

    # ---- status machine --------------------------------------------------------------------

    def change_status(
        self, target: TaskStatus, reason: str | None, by: Actor, *, at: datetime
    ) -> None:
        """A person's direct move (PUT, bulk update_status): to pending, completed, cancelled."""
        self._require_live()
        if target == self.status_enum:
            return
        if target not in MANUAL_TARGETS:
            raise InvalidTransitionError(
                f"status {target.value} is set by execution, not by an update",
                target=target.value,
            )
        if target == TaskStatus.CANCELLED:
            self.cancel(reason, by, at=at)  # a running task is asked to stop, not marked stopped
            return
        current = self.status_enum
        if current in ACTIVE and not (
            current == TaskStatus.QUEUED and target == TaskStatus.PENDING
        ):
            raise TaskAlreadyRunningError(
                f"a {current.value} task is moved by its execution; cancel or approve it instead",
                status=current.value,
            )
        self._require_move(target)
        self._status_changed(
            old=self.status,
            new=target.value,
            reason=reason,
            at=at,
            actor=by.id,
            request_id=by.request_id,
        )

    @event("StatusChanged")
    def _status_changed(  # noqa: PLR0913
        self, old: str, new: str, reason: str | None, at: datetime, actor: str, request_id: str
    ) -> None:
        ...

    def request_execution(  # noqa: PLR0913
        self,
        options: ExecutionPolicy,
        priority: Priority | None,
        unmet_dependencies: list[str],
        by: Actor,
        *,
        retry: bool = False,
    ) -> str:
        """Queue an attempt. Returns the new execution id."""
        self._require_live()
        current = self.status_enum
        if retry and current not in FINISHED_UNSUCCESSFULLY:
            raise InvalidTransitionError(
                f"only a failed, cancelled or timed out task can be retried; it is {current.value}",
                status=current.value,
            )
        if not retry and current in FINISHED_UNSUCCESSFULLY:
            retry = True
        if current in ACTIVE:
            raise TaskAlreadyRunningError(f"task is already {current.value}", status=current.value)
        self._require_move(TaskStatus.QUEUED)
        if unmet_dependencies:
            raise DependencyNotMetError(
                "dependencies are not completed", dependencies=sorted(unmet_dependencies)
            )
        execution_id = str(uuid4())
        self._execution_requested(
            execution_id=execution_id,
            attempt=self.attempt + 1,
            priority=int(priority) if priority is not None else self.priority,
            options=options.recorded(),
            retry=retry,
            actor=by.id,
            request_id=by.request_id,
        )
        return execution_id

    @event("ExecutionRequested")
    def _execution_requested(  # noqa: PLR0913
        self,
        execution_id: str,
        attempt: int,
        priority: int,
        options: dict[str, Any],
        retry: bool,
        actor: str,
        request_id: str,
    ) -> None:
        ...

    def cancel(self, reason: str | None, by: Actor, *, at: datetime) -> bool:
        """Cancel now if nothing runs, else record the request. Returns True if cancelled now."""
        self._require_live()
        current = self.status_enum
        in_review = current == TaskStatus.AWAITING_APPROVAL and self.worker_id is None
        if current in (TaskStatus.PENDING, TaskStatus.QUEUED) or in_review:
            self._cancelled(reason=reason, at=at, actor=by.id, request_id=by.request_id)
            return True
        if current in ACTIVE:
            if not self.cancel_requested:
                self._cancel_requested(reason=reason, actor=by.id, request_id=by.request_id)
            return False
        raise InvalidTransitionError(
            f"a {current.value} task cannot be cancelled", status=current.value
        )

    @event("Cancelled")
    def _cancelled(self, reason: str | None, at: datetime, actor: str, request_id: str) -> None:
        ...

    @event("CancelRequested")
    def _cancel_requested(self, reason: str | None, actor: str, request_id: str) -> None:
        ...

    # ---- execution facts (recorded by the runner) --------------------------------------------

    def start_execution(
        self,
        execution_id: str,
        worker_id: str,
        by: Actor,
        lease_until: datetime | None = None,
        *,
        at: datetime,
    ) -> None:
        """A worker claims the queued execution; saved with an expected version, so two workers
        racing for it cannot both start it."""
        self._require_live()
        if self.status_enum in ACTIVE - {TaskStatus.QUEUED}:
            raise TaskAlreadyRunningError(f"task is already {self.status}", status=self.status)
        if execution_id != self.execution_id:
            raise InvalidTransitionError("not the current execution", execution_id=execution_id)
        self._require_move(TaskStatus.RUNNING)
        self._execution_started(
            execution_id=execution_id,
            worker_id=worker_id,
            at=at,
            actor=by.id,
            request_id=by.request_id,
            lease_until=lease_until,
        )

    @event("ExecutionStarted")
    def _execution_started(  # noqa: PLR0913
        self,
        execution_id: str,
        worker_id: str,
        at: datetime,
        actor: str,
        request_id: str,
        lease_until: datetime | None = None,
    ) -> None:
        ...

    def _require_current(self, execution_id: str) -> None:
        """The execution is this task's current one and a worker holds it."""
        self._require_executing()
        if execution_id != self.execution_id or self.worker_id is None:
            raise InvalidTransitionError(
                "not the running execution", execution_id=execution_id, status=self.status
            )

    def renew_lease(self, execution_id: str, until: datetime, by: Actor) -> None:
        self._require_current(execution_id)
        self._lease_renewed(
            execution_id=execution_id, until=until, actor=by.id, request_id=by.request_id
        )

    @event("LeaseRenewed")
    def _lease_renewed(
        self, execution_id: str, until: datetime, actor: str, request_id: str
    ) -> None:
        ...

    def report_progress(
        self, execution_id: str, percentage: int | None, message: str | None, by: Actor
    ) -> None:
        self._require_current(execution_id)
        self._progress_reported(
            execution_id=execution_id,
            percentage=percentage,
            message=message,
            actor=by.id,
            request_id=by.request_id,
        )

    @event("ProgressReported")
    def _progress_reported(  # noqa: PLR0913
        self,
        execution_id: str,
        percentage: int | None,
        message: str | None,
        actor: str,
        request_id: str,
    ) -> None:
        ...

    def change_phase(
        self, execution_id: str, name: str, status: str, by: Actor, *, at: datetime
    ) -> None:
        self._require_current(execution_id)
        self._phase_changed(
            execution_id=execution_id,
            name=name,
            status=status,
            at=at,
            actor=by.id,
            request_id=by.request_id,
        )

    @event("PhaseChanged")
    def _phase_changed(  # noqa: PLR0913
        self, execution_id: str, name: str, status: str, at: datetime, actor: str, request_id: str
    ) -> None:
        ...

    def record_usage(self, execution_id: str, usage: Usage, by: Actor) -> None:
        """Records what a report of the current execution spent, priced by the caller."""
        self._require_current(execution_id)
        self.trigger_event(
            self.UsageRecorded,
            execution_id=execution_id,
            **usage.fields(),
            actor=by.id,
            request_id=by.request_id,
        )

    class UsageRecorded(Event):
        """Version 3 carries the normalized usage (``domain.usage``) field by field, with its
        computed cost and price version; before, one ``usage`` dict held what the agent sent
        (``upcast_v2_v3``); version 2 its place (``domain.place``)."""

        class_version = 3
        execution_id: str
        model: str | None
        provider: str | None
        input_tokens: int
        output_tokens: int
        cache_read_tokens: int
        cache_write_tokens: int
        reasoning_tokens: int | None
        requests: int
        cost_usd: float
        reported_cost_usd: float | None
        price_version: int | None
        actor: str
        request_id: str

        @classmethod
        def upcast_v2_v3(cls, state: dict[str, Any]) -> None:
            state.update(from_old_shape(state.pop("usage", None) or {}))

    def wait_for(self, execution_id: str, item_id: str, kind: str, by: Actor) -> None:
        """The agent asked a question (needs_input) or a checkpoint (awaiting_approval)."""
        self._require_current(execution_id)
        if self.status_enum != TaskStatus.RUNNING:
            raise InvalidTransitionError(
                f"the agent already waits for {self.waiting_on}", status=self.status
            )
        if kind not in ("question", "checkpoint"):
            raise RuleViolationError("an agent waits on a question or a checkpoint", kind=kind)
        target = TaskStatus.NEEDS_INPUT if kind == "question" else TaskStatus.AWAITING_APPROVAL
        self._input_requested(
            execution_id=execution_id,
            item_id=item_id,
            kind=kind,
            status=target.value,
            actor=by.id,
            request_id=by.request_id,
        )

    @event("InputRequested")
    def _input_requested(  # noqa: PLR0913
        self, execution_id: str, item_id: str, kind: str, status: str, actor: str, request_id: str
    ) -> None:
        ...

    def resume(self, item_id: str, by: Actor) -> None:
        """A person answered what the agent waits for: the agent runs on."""
        self._require_executing()
        if self.waiting_on is None or self.waiting_on != item_id:
            raise InvalidTransitionError("the agent does not wait for this", item_id=item_id)
        self._resumed(item_id=item_id, actor=by.id, request_id=by.request_id)

    @event("Resumed")
    def _resumed(self, item_id: str, actor: str, request_id: str) -> None:
        ...

    def expire_in_queue(self, execution_id: str, by: Actor, *, at: datetime) -> None:
        """The queue time-to-live ran out before any worker started the execution."""
        self._require_live()
        if execution_id != self.execution_id or self.status_enum != TaskStatus.QUEUED:
            raise InvalidTransitionError("not the queued execution", execution_id=execution_id)
        self._expired_in_queue(
            execution_id=execution_id, at=at, actor=by.id, request_id=by.request_id
        )

    @event("ExpiredInQueue")
    def _expired_in_queue(
        self, execution_id: str, at: datetime, actor: str, request_id: str
    ) -> None:
        ...

    def _require_executing(self) -> None:
        self._require_live()
        if self.status_enum not in ACTIVE - {TaskStatus.QUEUED}:
            raise InvalidTransitionError(
                f"no execution is in progress; the task is {self.status}", status=self.status
            )

    def request_review(
        self, summary: str | None, by: Actor, result: dict[str, Any] | None = None
    ) -> None:
        """Finished work waits for a person (seed 002's ready_to_test); the agent is gone."""
        self._require_executing()
        if self.status_enum != TaskStatus.RUNNING:
            raise InvalidTransitionError(
                f"the agent still waits for {self.waiting_on}", status=self.status
            )
        self._require_move(TaskStatus.AWAITING_APPROVAL)
        self._review_requested(
            summary=summary, actor=by.id, request_id=by.request_id, result=result
        )

    @event("ReviewRequested")
    def _review_requested(
        self,
        summary: str | None,
        actor: str,
        request_id: str,
        result: dict[str, Any] | None = None,
    ) -> None:
        ...

    def finish_execution(
        self, outcome: TaskStatus, result: dict[str, Any], by: Actor, *, at: datetime
    ) -> None:
        if outcome not in (
            TaskStatus.COMPLETED,
            TaskStatus.FAILED,
            TaskStatus.TIMED_OUT,
            TaskStatus.CANCELLED,
        ):
            raise RuleViolationError("not an outcome", outcome=outcome.value)
        self._require_executing()
        self._require_move(outcome)
        self._execution_finished(
            outcome=outcome.value, result=result, at=at, actor=by.id, request_id=by.request_id
        )

    def end_execution(
        self, outcome: TaskStatus, result: dict[str, Any], by: Actor, *, at: datetime
    ) -> None:
        """How the execution ended, as its worker reports it: completed work waits for a person
        instead when its options ask for a review (``require_approval``)."""
        if outcome == TaskStatus.COMPLETED and self.policy.require_approval:
            self.request_review(result.get("summary"), by, result)
        else:
            self.finish_execution(outcome, result, by, at=at)

    def retry_if_allowed(self, by: Actor, *, at: datetime) -> bool:
        """After a failed or timed out execution, queues the next attempt if its options leave
        retries, not started before their backoff from ``at``. Returns whether it did."""
        policy = self.policy
        failed = self.status_enum in (TaskStatus.FAILED, TaskStatus.TIMED_OUT)
        if not failed or policy.retry_attempts <= 0:
            return False
        retry = policy.next_retry(at.timestamp(), self.attempt)
        self.request_execution(retry, None, [], by, retry=True)
        return True

    @event("ExecutionFinished")
    def _execution_finished(  # noqa: PLR0913
        self, outcome: str, result: dict[str, Any], at: datetime, actor: str, request_id: str
    ) -> None:
        ...

    # ---- review of finished work (seed 002) -------------------------------------------------

    def _require_in_review(self, decision: str) -> None:
        if self.status_enum != TaskStatus.AWAITING_APPROVAL:
            raise InvalidTransitionError(
                f"only work awaiting approval can be {decision}; the task is {self.status}",
                status=self.status,
            )
        if self.waiting_on is not None:
            raise InvalidTransitionError(
                f"the agent waits on checkpoint {self.waiting_on}: decide the checkpoint",
                status=self.status,
                checkpoint_id=self.waiting_on,
            )

    def approve(self, comment: str | None, by: Actor, *, at: datetime) -> bool:
        """Returns False when the work was already approved (the same decision twice is one)."""
        self._require_live()
        if self.status_enum == TaskStatus.COMPLETED and self.approved:
            return False
        self._require_in_review("approved")
        self._work_approved(comment=comment, at=at, actor=by.id, request_id=by.request_id)
        return True

    @event("WorkApproved")
    def _work_approved(
        self, comment: str | None, at: datetime, actor: str, request_id: str
    ) -> None:
        ...

    def reject(self, reason: str, by: Actor) -> str:
        """Send the work back: a new attempt is queued with the reviewer's feedback."""
        self._require_live()
        self._require_in_review("rejected")
        execution_id = str(uuid4())
        self._work_rejected(
            reason=reason,
            execution_id=execution_id,
            attempt=self.attempt + 1,
            actor=by.id,
            request_id=by.request_id,
        )
        return execution_id

    @event("WorkRejected")
    def _work_rejected(
        self, reason: str, execution_id: str, attempt: int, actor: str, request_id: str
    ) -> None:
        ...


# ---- the fold ------------------------------------------------------------------------------

Fold = Callable[[TaskState, Any], TaskState]

FOLDS: dict[type, Fold] = {
    Task.Updated: fold.updated,
    Task.TagsAdded: fold.tags_added,
    Task.TagsRemoved: fold.tags_removed,
    Task.Assigned: fold.assigned,
    Task.PrioritySet: fold.priority_set,
    Task.SlugChanged: fold.slug_changed,
    Task.Deleted: fold.deleted,
    Task.DependencyAdded: fold.dependency_added,
    Task.DependencyRemoved: fold.dependency_removed,
    Task.StatusChanged: fold.status_changed,
    Task.ExecutionRequested: fold.execution_requested,
    Task.Cancelled: fold.cancelled,
    Task.CancelRequested: fold.cancel_requested,
    Task.ExecutionStarted: fold.execution_started,
    Task.LeaseRenewed: fold.lease_renewed,
    Task.ProgressReported: fold.progress_reported,
    Task.PhaseChanged: fold.phase_changed,
    Task.UsageRecorded: fold.usage_recorded,
    Task.InputRequested: fold.input_requested,
    Task.Resumed: fold.resumed,
    Task.ExpiredInQueue: fold.expired_in_queue,
    Task.ReviewRequested: fold.review_requested,
    Task.ExecutionFinished: fold.execution_finished,
    Task.WorkApproved: fold.work_approved,
    Task.WorkRejected: fold.work_rejected,
}


def evolve(state: TaskState | None, event: Any) -> TaskState:
    """The task's state after ``event``: the one definition the aggregate and the task
    projection share. Only a Created event starts from nothing."""
    if isinstance(event, Task.Created):
        return fold.created(event)
    if state is None:
        raise ValueError(f"{type(event).__qualname__} needs the task's state; it has none")
    change = FOLDS.get(type(event))
    return fold.stamped(state if change is None else change(state, event), event)
