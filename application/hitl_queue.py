"""The unified HITL queue (seed 001): every item waiting for a person, and finished work awaiting
review (seed 002's ready_to_test), from the read model, narrowed to the caller's project if the
caller is narrowed to one.
"""

from __future__ import annotations

from typing import Any

from application import hitl
from application.listings import every_task
from application.store import project_scope
from projections.execution_rows import HitlQuery
from projections.read_model import ReadModel
from projections.rows import TaskQuery, TaskRow

HITL_KINDS = ("question", "checkpoint", "experience")
QUEUE_TYPES = (*HITL_KINDS, "review")
REVIEW_PAGE = 100


def review_data(row: TaskRow) -> dict[str, Any]:
    """Finished work waiting for a person (seed 002's ready_to_test), as a queue entry."""
    return {
        "type": "review",
        "id": row.id,
        "task_id": row.id,
        "project_id": row.project_id,
        "slug": row.slug,
        "title": row.title,
        "status": "pending",
        "created_at": row.updated_at,  # the task's last change: when its work entered review
        "result": row.result,
    }


def reviews(
    read_model: ReadModel, team_id: str, project_id: str | None, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Tasks awaiting approval with no agent waiting (no execution in flight: one waiting on a
    checkpoint is listed as the checkpoint), newest first, and how many there are."""
    in_flight = {r.task_id for r in read_model.in_flight(team_id)}
    found: list[dict[str, Any]] = []
    total = 0
    query = TaskQuery(
        status=["awaiting_approval"],
        project_id=project_id,
        sort="updated_at",
        order="desc",
        page_size=REVIEW_PAGE,
    )
    for row in every_task(read_model, team_id, query):
        if row.id not in in_flight:
            total += 1
            if len(found) < limit:
                found.append(review_data(row))
    return found, total


def unified_queue(
    read_model: ReadModel, team_id: str, types: list[str], limit: int
) -> dict[str, Any]:
    """Every pending item and review (each kind up to ``limit``) of the selected types, newest
    first; the counts are of everything pending, whatever the types."""
    project_id = project_scope()
    pending: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for kind in HITL_KINDS:
        shown = limit if kind in types else 0
        query = HitlQuery(kinds=(kind,), statuses=("pending",), limit=shown)
        rows, counts[f"{kind}s"] = hitl.hitl_page(read_model, team_id, query, project_id)
        pending += [hitl.row_data(r) for r in rows]
    found, counts["reviews"] = reviews(
        read_model, team_id, project_id, limit if "review" in types else 0
    )
    pending += found
    pending.sort(key=lambda entry: entry["created_at"], reverse=True)
    return {"pending": pending, "counts": counts}
