"""What a remote worker sends over REST (``/api/workers``): bounded, keyword-only Structs.

Every report after the claim names the task and the worker; with the execution in the path they
must be the task's current execution and the worker holding its lease.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from msgspec import Meta

from application.commands import Command, Ref
from application.errors import NotFoundError
from application.scheduler import Claim
from application.store import Store
from domain.errors import DomainError
from domain.task import Task

WorkerId = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[\w.:@/-]+$")]
Outcome = Literal["completed", "failed", "timed_out", "cancelled"]
MAX_CHUNK_CHARS = 65_536  # the output batcher's largest chunk
MAX_CHUNKS = 1_000  # per request; the body limit bounds the total


class ClaimWork(Command, frozen=True):
    worker_id: WorkerId


class WorkerReport(Command, frozen=True):
    """Base of the reports on a claimed execution."""

    task_id: Ref
    worker_id: WorkerId


class SendHeartbeat(WorkerReport, frozen=True):
    waiting_on: Ref | None = None  # the question or checkpoint the agent waits on


class OutputChunkIn(Command, frozen=True):
    seq: Annotated[int, Meta(ge=0, le=100_000_000)]
    stream: Literal["stdout", "stderr", "system"]
    text: Annotated[str, Meta(max_length=MAX_CHUNK_CHARS)]


class RecordOutput(WorkerReport, frozen=True):
    chunks: Annotated[list[OutputChunkIn], Meta(min_length=1, max_length=MAX_CHUNKS)]


class ReportMessage(WorkerReport, frozen=True):
    """One agent protocol message (progress, phase, question, checkpoint, experience, usage);
    checked against the protocol's bounds (docs/agent-protocol.md) by the route."""

    message: dict[str, Any]


class FinishExecution(WorkerReport, frozen=True):
    outcome: Outcome
    result: dict[str, Any] = {}


class LeaseLostError(DomainError):
    """The execution is no longer the task's, or no longer held by this worker: stop."""

    code = "LEASE_LOST"


def held_claim(store: Store, team_id: str, execution_id: str, report: WorkerReport) -> Claim:
    """The claim a report speaks for, rebuilt from the task: the task must be the team's (else
    the execution is not found) and its current execution held by the reporting worker."""
    try:
        task = store.load(Task, UUID(report.task_id), team_id, "task")
    except (NotFoundError, ValueError):
        raise NotFoundError("execution", execution_id) from None
    if task.execution_id != execution_id or task.worker_id != report.worker_id:
        raise LeaseLostError(
            "this execution is no longer held by this worker",
            execution_id=execution_id,
            status=task.status,
        )
    lease_until = task.lease_until.timestamp() if task.lease_until else 0.0
    return Claim(
        task_id=str(task.id),
        team_id=task.team_id,
        project_id=task.project_id,
        execution_id=execution_id,
        attempt=task.attempt,
        worker_id=report.worker_id,
        lease_until=lease_until,
        title=task.title,
        description=task.description,
        slug=task.slug,
        metadata=dict(task.metadata),
        repository_url=task.repository_url,
        base_branch=task.base_branch,
        test_command=task.test_command,
        options=dict(task.execution_options),
    )
