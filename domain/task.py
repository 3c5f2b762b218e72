"""The Task aggregate: what to do, where, and the status machine that governs it.

Public methods decide (check rules, compute values, may raise); the private ``@event`` methods
only assign, because replay runs them again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from domain.errors import (
    DeletedError,
    DependencyCycleError,
    DependencyNotMetError,
    InvalidTransitionError,
    RuleViolationError,
    TaskAlreadyRunningError,
)
from domain.values import (
    ACTIVE,
    FINISHED_UNSUCCESSFULLY,
    MANUAL_TARGETS,
    TRANSITIONS,
    Actor,
    Priority,
    TaskStatus,
)


def _now() -> datetime:
    return datetime.now(UTC)


NO_USAGE = {
    "input_tokens": 0,
    "output_tokens": 0,
    "cache_read_tokens": 0,
    "cache_creation_tokens": 0,
    "cost_usd": 0.0,
    "models": [],
}


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


class Task(Aggregate):
    """A unit of agent work inside a project."""

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
        self.team_id = team_id
        self.project_id = project_id
        self.title = title
        self.description = description
        self.priority = priority
        self.tags = list(tags)
        self.metadata = dict(metadata)
        self.assigned_to = assigned_to
        self.estimated_duration = estimated_duration
        self.slug = slug
        self.dependencies = list(dependencies)
        self.repository_url = repository_url
        self.base_branch = base_branch
        self.ticket_id = ticket_id
        self.ticket_summary = ticket_summary
        self.test_command = test_command
        self.created_by = actor
        self.status = TaskStatus.PENDING.value
        self.progress_percentage = 0
        self.deleted = False
        self.deleted_reason: str | None = None
        self.attempt = 0
        self.execution_id: str | None = None
        self.execution_options: dict[str, Any] = {}
        self.cancel_requested = False
        self.started_at: Any = None
        self.completed_at: Any = None
        self.result: dict[str, Any] | None = None
        self.last_reason: str | None = None
        self.approved = False
        self.worker_id: str | None = None  # holds the current execution's lease
        self.lease_until: datetime | None = None
        self.waiting_on: str | None = None  # the question or checkpoint the agent waits for
        self.phases: list[dict[str, Any]] = []
        self.usage: dict[str, Any] = {**NO_USAGE, "models": []}

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
        for key, value in changes.items():
            setattr(self, key, value)

    def add_tags(self, tags: list[str], by: Actor) -> None:
        self._require_live()
        new = [t for t in dict.fromkeys(tags) if t not in self.tags]
        if new:
            self._tags_added(tags=new, actor=by.id, request_id=by.request_id)

    @event("TagsAdded")
    def _tags_added(self, tags: list[str], actor: str, request_id: str) -> None:
        self.tags = self.tags + list(tags)

    def remove_tags(self, tags: list[str], by: Actor) -> None:
        self._require_live()
        gone = [t for t in dict.fromkeys(tags) if t in self.tags]
        if gone:
            self._tags_removed(tags=gone, actor=by.id, request_id=by.request_id)

    @event("TagsRemoved")
    def _tags_removed(self, tags: list[str], actor: str, request_id: str) -> None:
        self.tags = [t for t in self.tags if t not in tags]

    def assign(self, assigned_to: str | None, by: Actor) -> None:
        self._require_live()
        if assigned_to != self.assigned_to:
            self._assigned(assigned_to=assigned_to, actor=by.id, request_id=by.request_id)

    @event("Assigned")
    def _assigned(self, assigned_to: str | None, actor: str, request_id: str) -> None:
        self.assigned_to = assigned_to

    def set_priority(self, priority: Priority, by: Actor) -> None:
        self._require_live()
        if int(priority) != self.priority:
            self._priority_set(priority=int(priority), actor=by.id, request_id=by.request_id)

    @event("PrioritySet")
    def _priority_set(self, priority: int, actor: str, request_id: str) -> None:
        self.priority = priority

    def change_slug(self, slug: str | None, by: Actor) -> None:
        self._require_live()
        if slug != self.slug:
            self._slug_changed(slug=slug, actor=by.id, request_id=by.request_id)

    @event("SlugChanged")
    def _slug_changed(self, slug: str | None, actor: str, request_id: str) -> None:
        self.slug = slug

    def delete(self, reason: str | None, by: Actor) -> None:
        self._require_live()
        if self.status_enum in ACTIVE:
            raise TaskAlreadyRunningError(
                f"a {self.status} task cannot be deleted; cancel it first", status=self.status
            )
        self._deleted(reason=reason, actor=by.id, request_id=by.request_id)

    @event("Deleted")
    def _deleted(self, reason: str | None, actor: str, request_id: str) -> None:
        self.deleted = True
        self.deleted_reason = reason

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
        self.dependencies = [*self.dependencies, task_id]

    def remove_dependency(self, task_id: UUID, by: Actor) -> None:
        self._require_live()
        if str(task_id) in self.dependencies:
            self._dependency_removed(task_id=str(task_id), actor=by.id, request_id=by.request_id)

    @event("DependencyRemoved")
    def _dependency_removed(self, task_id: str, actor: str, request_id: str) -> None:
        self.dependencies = [d for d in self.dependencies if d != task_id]

    # ---- status machine --------------------------------------------------------------------

    def change_status(self, target: TaskStatus, reason: str | None, by: Actor) -> None:
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
            self.cancel(reason, by)  # a running task is asked to stop, not marked stopped
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
            at=_now(),
            actor=by.id,
            request_id=by.request_id,
        )

    @event("StatusChanged")
    def _status_changed(  # noqa: PLR0913
        self, old: str, new: str, reason: str | None, at: datetime, actor: str, request_id: str
    ) -> None:
        self.status = new
        self.last_reason = reason
        self.completed_at = at if new in (TaskStatus.COMPLETED.value, "cancelled") else None

    def request_execution(  # noqa: PLR0913
        self,
        options: dict[str, Any],
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
            options=options,
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
        self.status = TaskStatus.QUEUED.value
        self.execution_id = execution_id
        self.attempt = attempt
        self.priority = priority
        self.execution_options = dict(options)
        self.cancel_requested = False
        self.started_at = None
        self.completed_at = None
        self.result = None
        self.approved = False

    def cancel(self, reason: str | None, by: Actor) -> bool:
        """Cancel now if nothing runs, else record the request. Returns True if cancelled now."""
        self._require_live()
        current = self.status_enum
        in_review = current == TaskStatus.AWAITING_APPROVAL and self.worker_id is None
        if current in (TaskStatus.PENDING, TaskStatus.QUEUED) or in_review:
            self._cancelled(reason=reason, at=_now(), actor=by.id, request_id=by.request_id)
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
        self.status = TaskStatus.CANCELLED.value
        self.last_reason = reason
        self.completed_at = at

    @event("CancelRequested")
    def _cancel_requested(self, reason: str | None, actor: str, request_id: str) -> None:
        self.cancel_requested = True
        self.last_reason = reason

    # ---- execution facts (recorded by the runner) --------------------------------------------

    def start_execution(
        self, execution_id: str, worker_id: str, by: Actor, lease_until: datetime | None = None
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
            at=_now(),
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
        self.status = TaskStatus.RUNNING.value
        self.started_at = at
        self.worker_id = worker_id
        self.lease_until = lease_until
        self.phases = []
        self.waiting_on = None

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
        self.lease_until = until

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
        if percentage is not None:
            self.progress_percentage = percentage

    def change_phase(self, execution_id: str, name: str, status: str, by: Actor) -> None:
        self._require_current(execution_id)
        self._phase_changed(
            execution_id=execution_id,
            name=name,
            status=status,
            at=_now(),
            actor=by.id,
            request_id=by.request_id,
        )

    @event("PhaseChanged")
    def _phase_changed(  # noqa: PLR0913
        self, execution_id: str, name: str, status: str, at: datetime, actor: str, request_id: str
    ) -> None:
        phases = [dict(p) for p in self.phases]
        known = next((p for p in phases if p["name"] == name), None)
        if known is None:
            known = {"name": name, "status": status, "started_at": at, "finished_at": None}
            phases.append(known)
        if status == "started" and known["status"] != "started":  # begun again
            known["started_at"], known["finished_at"] = at, None
        known["status"] = status
        if status != "started":
            known["finished_at"] = at
        self.phases = phases

    def record_usage(self, execution_id: str, usage: dict[str, Any], by: Actor) -> None:
        self._require_current(execution_id)
        self._usage_recorded(
            execution_id=execution_id, usage=usage, actor=by.id, request_id=by.request_id
        )

    @event("UsageRecorded")
    def _usage_recorded(
        self, execution_id: str, usage: dict[str, Any], actor: str, request_id: str
    ) -> None:
        totals = dict(self.usage)
        for key in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens"):
            totals[key] = totals[key] + int(usage.get(key) or 0)
        totals["cost_usd"] = round(totals["cost_usd"] + float(usage.get("cost_usd") or 0.0), 6)
        model = usage.get("model")
        if model and model not in totals["models"]:
            totals["models"] = [*totals["models"], model]
        self.usage = totals

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
        self.status = status
        self.waiting_on = item_id

    def resume(self, item_id: str, by: Actor) -> None:
        """A person answered what the agent waits for: the agent runs on."""
        self._require_executing()
        if self.waiting_on is None or self.waiting_on != item_id:
            raise InvalidTransitionError("the agent does not wait for this", item_id=item_id)
        self._resumed(item_id=item_id, actor=by.id, request_id=by.request_id)

    @event("Resumed")
    def _resumed(self, item_id: str, actor: str, request_id: str) -> None:
        self.status = TaskStatus.RUNNING.value
        self.waiting_on = None

    def expire_in_queue(self, execution_id: str, by: Actor) -> None:
        """The queue time-to-live ran out before any worker started the execution."""
        self._require_live()
        if execution_id != self.execution_id or self.status_enum != TaskStatus.QUEUED:
            raise InvalidTransitionError("not the queued execution", execution_id=execution_id)
        self._expired_in_queue(
            execution_id=execution_id, at=_now(), actor=by.id, request_id=by.request_id
        )

    @event("ExpiredInQueue")
    def _expired_in_queue(
        self, execution_id: str, at: datetime, actor: str, request_id: str
    ) -> None:
        self.status = TaskStatus.TIMED_OUT.value
        self.last_reason = "queue time-to-live expired"
        self.completed_at = at

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
        self.status = TaskStatus.AWAITING_APPROVAL.value
        self.last_reason = summary
        self.result = dict(result) if result is not None else self.result
        self.worker_id = None
        self.lease_until = None
        self.waiting_on = None

    def finish_execution(self, outcome: TaskStatus, result: dict[str, Any], by: Actor) -> None:
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
            outcome=outcome.value, result=result, at=_now(), actor=by.id, request_id=by.request_id
        )

    @event("ExecutionFinished")
    def _execution_finished(  # noqa: PLR0913
        self, outcome: str, result: dict[str, Any], at: datetime, actor: str, request_id: str
    ) -> None:
        self.status = outcome
        self.result = dict(result)
        self.completed_at = at
        self.worker_id = None
        self.lease_until = None
        self.waiting_on = None
        if outcome == TaskStatus.COMPLETED.value:
            self.progress_percentage = 100

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

    def approve(self, comment: str | None, by: Actor) -> bool:
        """Returns False when the work was already approved (the same decision twice is one)."""
        self._require_live()
        if self.status_enum == TaskStatus.COMPLETED and self.approved:
            return False
        self._require_in_review("approved")
        self._work_approved(comment=comment, at=_now(), actor=by.id, request_id=by.request_id)
        return True

    @event("WorkApproved")
    def _work_approved(
        self, comment: str | None, at: datetime, actor: str, request_id: str
    ) -> None:
        self.status = TaskStatus.COMPLETED.value
        self.approved = True
        self.last_reason = comment
        self.progress_percentage = 100
        self.completed_at = at

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
        self.status = TaskStatus.QUEUED.value
        self.last_reason = reason
        self.execution_id = execution_id
        self.attempt = attempt
        self.result = None
        self.cancel_requested = False
        self.started_at = None
        self.completed_at = None
