"""One timeline per task: its own events interleaved, by position, with those of everything
attached to it (questions, checkpoints, experiences, webhook deliveries about it, its output), for
auditors (docs/audit.md, "A task's timeline").

Bounded: a page is one query of the event store over the task and its items (the read model's
``tw_hitl`` names the items; output rows come from ``tw_output``), narrowed to the kinds asked
for by topic, from ``after`` and at most ``limit``; only that page is decoded. A webhook
delivery's id is derived from its webhook and the delivered event's position, so the page's
deliveries are found from the team's webhooks and the page's positions, in one more query. Actor
names are read in one query of the actors' first events. Nothing loads the task aggregate, so a
history of any length costs a page, not a replay.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from application.store import Store, event_data
from application.webhooks.logs import team_webhooks
from domain.hitl import Checkpoint, Experience, HitlItem, Question
from domain.naming import public_name
from domain.task import Task
from domain.values import rfc3339
from domain.webhook_delivery import WebhookDelivery, delivery_id
from projections.read_model import ReadModel

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_ITEMS = 10_000  # a task's questions, checkpoints and experiences read from tw_hitl
ITEM_KINDS = {"question": "questions", "checkpoint": "checkpoints", "experience": "experiences"}
KINDS = (
    "task",
    "reviews",
    "usage",
    "executions",
    "questions",
    "checkpoints",
    "experiences",
    "webhooks",
    "output",
)
DEFAULT_KINDS = frozenset(KINDS) - {"output"}  # output chunks: too many, asked for by name

# the task's own events by kind; every other task event is of kind "task"
TASK_KINDS: dict[type, str] = {
    Task.UsageRecorded: "usage",
    Task.ReviewRequested: "reviews",
    Task.WorkApproved: "reviews",
    Task.WorkRejected: "reviews",
    Task.ExecutionRequested: "executions",
    Task.ExecutionStarted: "executions",
    Task.LeaseRenewed: "executions",
    Task.ProgressReported: "executions",
    Task.PhaseChanged: "executions",
    Task.ExpiredInQueue: "executions",
    Task.ExecutionFinished: "executions",
}
ITEM_CLASSES: dict[str, type] = {
    "questions": Question,
    "checkpoints": Checkpoint,
    "experiences": Experience,
}


class TimelineQuery(msgspec.Struct, frozen=True, kw_only=True):
    kinds: frozenset[str] = DEFAULT_KINDS
    after: int = 0
    limit: int = DEFAULT_LIMIT


def chosen_kinds(words: list[str]) -> frozenset[str]:
    """``?include=`` words (checked against ``KINDS`` by the caller); none: the default kinds."""
    return frozenset(words) if words else DEFAULT_KINDS


def task_history(
    store: Store,
    ref: str,
    team_id: str,
    read_model: ReadModel | None = None,
    query: TimelineQuery | None = None,
) -> dict[str, Any]:
    """A page of the task's timeline, or (no query) all of it, page after page; deleted tasks
    keep theirs. Without a read model the task's own events only (no items, output or
    deliveries can be found)."""
    if query is not None:
        return timeline_page(store, ref, team_id, read_model, query)
    q = TimelineQuery(limit=MAX_LIMIT)
    whole = timeline_page(store, ref, team_id, read_model, q)
    while whole["next_after"] is not None:
        q = msgspec.structs.replace(q, after=whole["next_after"])
        page = timeline_page(store, ref, team_id, read_model, q)
        whole = {**page, "history": whole["history"] + page["history"]}
    return whole


def timeline_page(
    store: Store, ref: str, team_id: str, read_model: ReadModel | None, q: TimelineQuery
) -> dict[str, Any]:
    task_id = store.resolve(ref, team_id, "task")
    store.placed_first(task_id, team_id, "task")
    anchors = "webhooks" in q.kinds  # every event may have been delivered: all are read
    items = _items(read_model, team_id, str(task_id), None if anchors else q.kinds)
    ids = [task_id, *items] if anchors or q.kinds & {"task", *TASK_KINDS.values()} else items
    topics = None if anchors else _topics(q.kinds)
    found = store.events_of_many(ids, team_id, after=q.after, limit=q.limit, topics=topics)
    output = []
    if "output" in q.kinds and read_model is not None:
        output = read_model.output(team_id, str(task_id), q.after, q.limit)
    page = sorted(
        [(p, _event_entry(p, e, str(task_id), items)) for p, e in found]
        + [(o.position, _output_entry(o)) for o in output],
        key=lambda pair: pair[0],
    )[: q.limit]
    entries = [e for _, e in page if e["kind"] in q.kinds]
    if anchors:
        last = page[-1][0] if page else q.after
        entries = _with_deliveries(store, team_id, entries, [p for p, _ in found if p <= last])
    _name_actors(store, team_id, entries)
    more = len(page) == q.limit
    return {
        "task_id": str(task_id),
        "history": entries,
        "include": sorted(q.kinds),
        "next_after": page[-1][0] if more else None,
    }


def _items(
    read_model: ReadModel | None, team_id: str, task_id: str, kinds: frozenset[str] | None
) -> dict[UUID, str]:
    """The task's items (id to kind) of the kinds asked for (None: every kind)."""
    if read_model is None:
        return {}
    wanted = tuple(k for k, name in ITEM_KINDS.items() if kinds is None or name in kinds)
    if not wanted:
        return {}
    found = read_model.hitl_kinds(team_id, task_id, wanted, MAX_ITEMS)
    return {UUID(i): ITEM_KINDS[kind] for i, kind in found.items()}


def _topics(kinds: frozenset[str]) -> list[str]:
    """The stored topics of the kinds' events (none of these classes has moved: their topics
    are the classes' own, ``application/topics.py``)."""
    classes: list[type] = [c for c, kind in TASK_KINDS.items() if kind in kinds]
    if "task" in kinds:
        classes += [c for c in _task_classes() if c not in TASK_KINDS]
    for kind, item in ITEM_CLASSES.items():
        if kind in kinds:
            classes += [v for v in vars(item).values() if _is_event(v)]
            classes.append(HitlItem.Withdrawn)
    return sorted({get_topic(c) for c in classes})


def _task_classes() -> list[type]:
    return [v for v in vars(Task).values() if _is_event(v)]


def _is_event(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, Aggregate.Event)


def kind_of(event: Any, items: dict[UUID, str]) -> str:
    if isinstance(event, Task.Event):
        return TASK_KINDS.get(type(event), "task")
    if isinstance(event, WebhookDelivery.Event):
        return "webhooks"
    return items.get(event.originator_id, "task")


def _event_entry(position: int, event: Any, task_id: str, items: dict[UUID, str]) -> dict[str, Any]:
    data = event_data(event)
    if not (isinstance(event, Aggregate.Created) and str(event.originator_id) == task_id):
        for name in getattr(event, "PLACE", ()):  # the task's place: said once, on its creation
            data.pop(name, None)
    return {
        "position": position,
        "kind": kind_of(event, items),
        "type": public_name(event),
        "aggregate_id": str(event.originator_id),
        "version": event.originator_version,
        "timestamp": rfc3339(event.timestamp),
        "actor": data.pop("actor", None),
        "request_id": data.pop("request_id", None),
        "data": jsonable(data),
    }


def _output_entry(row: Any) -> dict[str, Any]:
    return {
        "position": row.position,
        "kind": "output",
        "type": "output_chunk.written",
        "aggregate_id": None,
        "version": 1,
        "timestamp": row.timestamp,
        "actor": None,
        "request_id": None,
        "data": {
            "execution_id": row.execution_id,
            "seq": row.seq,
            "stream": row.stream,
            "text": row.text,
        },
    }


def _with_deliveries(
    store: Store, team_id: str, entries: list[dict[str, Any]], positions: list[int]
) -> list[dict[str, Any]]:
    """Each delivery's events right after the event it delivered (``about_position``)."""
    hooks = [UUID(e.webhook_id) for e in team_webhooks(store, team_id).get()]
    about = {delivery_id(h, f"position:{p}"): p for h in hooks for p in positions}
    if not about:
        return entries
    found = store.events_of_many(list(about), team_id, limit=len(about) * 20)
    by_anchor: dict[int, list[dict[str, Any]]] = {}
    for position, event in found:
        entry = _delivery_entry(position, event, about[event.originator_id])
        by_anchor.setdefault(entry["data"]["about_position"], []).append(entry)
    merged: list[dict[str, Any]] = []
    for entry in entries:
        merged.append(entry)
        merged += by_anchor.pop(entry["position"], [])
    for anchor in sorted(by_anchor):  # delivered events of kinds not asked for
        merged += by_anchor[anchor]
    return sorted(merged, key=lambda e: e["data"].get("about_position", e["position"]))


def _delivery_entry(position: int, event: Any, about: int) -> dict[str, Any]:
    data = event_data(event)
    data.pop("team_id", None)
    data.pop("payload", None)  # the exact body sent: the delivered event, already listed
    data.pop("position", None)
    data["about_position"] = about
    name = type(event).__qualname__.rpartition(".")[2].lower()
    return {
        "position": position,
        "kind": "webhooks",
        "type": f"webhook_delivery.{name}",
        "aggregate_id": str(event.originator_id),
        "version": event.originator_version,
        "timestamp": rfc3339(event.timestamp),
        "actor": data.pop("actor", None),
        "request_id": data.pop("request_id", None),
        "data": jsonable(data),
    }


def _name_actors(store: Store, team_id: str, entries: list[dict[str, Any]]) -> None:
    names = display_names(store, team_id, {e["actor"] for e in entries if e["actor"]})
    for entry in entries:
        entry["actor_name"] = names.get(entry["actor"]) if entry["actor"] else None


def display_names(store: Store, team_id: str, actors: Iterable[str]) -> dict[str, str | None]:
    """Each actor's name: a user's username, an API key's name, a worker's id, a system
    actor's role; read in one query of the users' and keys' first events."""
    names: dict[str, str | None] = {}
    ids: dict[UUID, str] = {}
    for actor in actors:
        kind, _, rest = actor.partition(":")
        names[actor] = rest if kind in ("worker", "system") else None
        if kind in ("user", "key"):
            try:
                ids[UUID(rest)] = actor
            except ValueError:
                continue
    for _, first in store.events_of_many(list(ids), team_id, version=1, limit=len(ids) or 1):
        named = ids.get(first.originator_id)
        if named is not None:
            names[named] = getattr(first, "username", None) or getattr(first, "name", None)
    return names


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "isoformat") and hasattr(value, "tzinfo"):
        return rfc3339(value)
    if isinstance(value, UUID):
        return str(value)
    return value
