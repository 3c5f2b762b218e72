"""People in the loop: answer an agent's question, decide its checkpoints and experiences.

The decision and the task's move back to running are one transaction; the worker learns of the
decision on its next heartbeat and writes it to the agent. The same decision twice is one
decision (no event, the same answer); a contrary one is 409.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import msgspec

from application import executions
from application.commands import ApproveWork, Decide, RejectWork, Respond, Targeted
from application.errors import NotFoundError
from application.results import Changed, Represented
from application.store import Store, project_scope
from domain.errors import RuleViolationError
from domain.hitl import Checkpoint, Experience, HitlItem, Question
from domain.task import Task
from domain.values import Actor, rfc3339
from projections.execution_rows import HitlQuery, HitlRow
from projections.read_model import ReadModel

KINDS: dict[type, str] = {Question: "question", Checkpoint: "checkpoint", Experience: "experience"}

H = TypeVar("H", bound=HitlItem)
DEFAULT_REJECTION = "rejected"


def item_data(item: HitlItem) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(item.id),
        "type": KINDS[type(item)],
        "task_id": item.task_id,
        "project_id": item.project_id,
        "execution_id": item.execution_id,
        "status": item.status,
        "created_at": rfc3339(item.created_on),
        "decided_by": item.decided_by,
        "reason": item.reason,
    }
    if isinstance(item, Question):
        data |= {
            "question": item.question,
            "options": item.options,
            "default": item.default,
            "response": item.response,
            "deadline": rfc3339(item.deadline),
        }
    elif isinstance(item, Checkpoint):
        data |= {
            "action": item.action,
            "description": item.description,
            "data": item.data,
            "deadline": rfc3339(item.deadline),
        }
    elif isinstance(item, Experience):
        data |= {"title": item.title, "content": item.content, "tags": item.tags}
    return data


def load_item(store: Store, item_id: str, by: Actor, kind: type[H]) -> H:
    """Another team's item, and one of another kind, answer not found like a missing one."""
    name = KINDS.get(kind, "item")
    return store.load_ref(kind, item_id, by.team_id, name)


def load_visible(
    store: Store, item_id: str, by: Actor, kind: type[HitlItem] = HitlItem
) -> HitlItem:
    """``load_item``, and an item of another project is not found for a project-scoped caller
    (the store narrows projects and tasks only)."""
    item = load_item(store, item_id, by, kind)
    scope = project_scope()
    if scope is not None and item.project_id != scope:
        raise NotFoundError(KINDS.get(kind, "item"), item_id)
    return item


def respond(store: Store, cmd: Targeted[Respond], by: Actor) -> Changed:
    """Seed 002: ``POST /api/tasks/{id}/respond``; the target is the task."""
    answer = cmd.command

    def decide() -> Changed:
        task = store.load_live(Task, cmd.target, by.team_id, "task")
        question = load_item(store, answer.question_id, by, Question)
        if question.task_id != str(task.id):
            raise NotFoundError("question", answer.question_id)
        question.answer(answer.response, by.id, request_id=by.request_id)
        _resume(task, question, by)
        position = store.commit(question, task)
        return Changed(data={**item_data(question), "task_status": task.status}, position=position)

    return store.with_retries(decide)


def decide_item(
    store: Store, cmd: Targeted[Decide], approved: bool, by: Actor, kind: type[HitlItem]
) -> Changed:
    """Approve or reject a checkpoint or an experience (``kind`` HitlItem: whichever it is)."""

    def decide() -> Changed:
        item = load_visible(store, cmd.target, by, kind)
        if not isinstance(item, Checkpoint | Experience):  # a Question, the only other kind
            raise RuleViolationError(
                "a question is answered, not approved: POST /api/tasks/{task_id}/respond",
                field="item_id",
            )
        item.decide(approved, cmd.command.reason, by.id, request_id=by.request_id)
        touched: list[Any] = [item]
        if isinstance(item, Checkpoint):
            task = store.load(Task, UUID(item.task_id), by.team_id, "task")
            _resume(task, item, by)
            touched.append(task)
        position = store.commit(*touched)
        return Changed(data=item_data(item), position=position)

    return store.with_retries(decide)


def decide_review(store: Store, cmd: Targeted[Decide], approved: bool, by: Actor) -> Changed:
    """Work awaiting review, by its task's id: approve it, or reject it (a new attempt)."""
    try:
        task = store.load_live(Task, str(UUID(cmd.target)), by.team_id, "item")
    except ValueError:
        raise NotFoundError("item", cmd.target) from None
    ref = str(task.id)
    decided: Represented
    if approved:
        reason = cmd.command.reason
        approval = Targeted(target=ref, command=ApproveWork(comment=reason))
        decided = executions.approve_work(store, approval, by)
    else:
        reason = cmd.command.reason or DEFAULT_REJECTION
        rejection = Targeted(target=ref, command=RejectWork(reason=reason))
        decided = executions.reject_work(store, rejection, by)
    data = {
        "type": "review",
        "id": ref,
        "task_id": ref,
        "project_id": task.project_id,
        "status": "approved" if approved else "rejected",
        "reason": reason,
        "decided_by": by.id,
        "task_status": decided.data["status"],
    }
    return Changed(data=data, position=decided.position)


def decide_any(store: Store, cmd: Targeted[Decide], approved: bool, by: Actor) -> Changed:
    """A checkpoint or an experience by its id, else work awaiting review by its task's id; a
    question is answered, not decided (422)."""
    try:
        load_visible(store, cmd.target, by)
    except NotFoundError:
        return decide_review(store, cmd, approved, by)
    return decide_item(store, cmd, approved, by, HitlItem)


def _resume(task: Task, item: HitlItem, by: Actor) -> None:
    """The agent waits for this item: it runs on (no-op if it no longer waits for it)."""
    if task.waiting_on == str(item.id) and item.status != "pending":
        task.resume(str(item.id), by)


# ---- reads (the HTTP routes): one item from its aggregate, listings from the read model -------

SCAN = 500  # rows read at a time when a listing is narrowed to one project


def item_view(item: HitlItem) -> dict[str, Any]:
    """``item_data`` with the fields a listing row has too: when and whether by default."""
    decided = item.status != "pending"
    data = item_data(item) | {"decided_at": rfc3339(item.modified_on) if decided else None}
    if isinstance(item, Question | Checkpoint):  # an experience has no deadline to pass
        data["by_default"] = item.by_default
    return data


def row_data(row: HitlRow) -> dict[str, Any]:
    """A read model row in the shape of ``item_view``."""
    data: dict[str, Any] = {
        "id": row.id,
        "type": row.kind,
        "task_id": row.task_id,
        "project_id": row.project_id,
        "execution_id": row.execution_id,
        "status": row.status,
        "created_at": row.created_at,
        "decided_at": row.decided_at,
        "decided_by": row.decided_by,
        "reason": None,
    }
    if row.kind == "question":
        data |= {"response": None}
    if row.kind != "experience":
        deadline = None if row.deadline is None else datetime.fromtimestamp(row.deadline, UTC)
        data |= {"by_default": False, "deadline": rfc3339(deadline)}
    return data | row.data


def hitl_page(
    read_model: ReadModel, team_id: str, q: HitlQuery, project_id: str | None
) -> tuple[list[HitlRow], int]:
    """``read_model.hitl_items``, narrowed to one project when ``project_id`` is given (the
    view's query has no project filter: the team's rows are scanned and filtered here)."""
    if project_id is None:
        return read_model.hitl_items(team_id, q)
    matching: list[HitlRow] = []
    offset = 0
    while True:
        rows, _ = read_model.hitl_items(
            team_id, msgspec.structs.replace(q, limit=SCAN, offset=offset)
        )
        matching += [r for r in rows if r.project_id == project_id]
        if len(rows) < SCAN:
            break
        offset += SCAN
    return matching[q.offset : q.offset + q.limit], len(matching)
