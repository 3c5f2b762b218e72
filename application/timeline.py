"""One timeline per task: its own events interleaved, by position, with those of everything
attached to it (questions, checkpoints, experiences, webhook deliveries about it, its output), for
auditors (docs/audit.md, "A task's timeline").

Bounded: the read model indexes every event of a task and of its items by position and kind
(``tw_timeline``, kinds from ``projections/timeline.py``), so a page is a range read of that
index from ``after``, at most ``limit``, then one read of those events by position; only the
page is read and decoded, however long the history. The task's own events the read model has
not applied yet are read from the event store after its position, so they are on the page at
once; an item's newer events once the read model has them (``?min_position=`` waits). Output
rows come from ``tw_output``. A webhook delivery's id is derived from its webhook and the
delivered event's position, so the page's deliveries are found from the team's webhooks and the
page's positions, in one more query. Actor names are read in one query of the actors' first
events. Nothing loads the task aggregate.
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
from domain.hitl import HitlItem
from domain.naming import public_name
from domain.task import Task
from domain.values import rfc3339
from domain.webhook_delivery import WebhookDelivery, delivery_id
from projections.read_model import ReadModel
from projections.timeline import (
    INDEXED_KINDS,
    ITEM_CLASSES,
    ITEM_NAMES,
    KINDS,
    OWN_KINDS,
    TASK_KINDS,
    event_classes,
)

__all__ = ["KINDS", "TimelineQuery", "chosen_kinds", "task_history"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_ITEMS = 10_000  # a task's items read from tw_hitl, for the part of a log before the index
DEFAULT_KINDS = frozenset(KINDS) - {"output"}  # output chunks: too many, asked for by name
Found = list[tuple[int, Any, str]]  # (position, event, kind)


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
    found = _events(store, team_id, task_id, read_model, q)
    output = []
    if "output" in q.kinds and read_model is not None:
        output = read_model.output(team_id, str(task_id), q.after, q.limit)
    page = sorted(
        [(p, _event_entry(p, e, kind, str(task_id))) for p, e, kind in found]
        + [(o.position, _output_entry(o)) for o in output],
        key=lambda pair: pair[0],
    )[: q.limit]
    entries = [e for _, e in page if e["kind"] in q.kinds]
    if anchors:
        last = page[-1][0] if page else q.after
        entries = _with_deliveries(store, team_id, entries, [p for p, _, _ in found if p <= last])
    _name_actors(store, team_id, entries)
    more = len(page) == q.limit
    return {
        "task_id": str(task_id),
        "history": entries,
        "include": sorted(q.kinds),
        "next_after": page[-1][0] if more else None,
    }


def _events(
    store: Store, team_id: str, task_id: UUID, read_model: ReadModel | None, q: TimelineQuery
) -> Found:
    """The page's events of the task and its items, with their kinds, in log order: those
    before the index starts (read the old way), the indexed ones up to the read model's
    position, then the task's own events after it."""
    every = "webhooks" in q.kinds  # deliveries anchor on events of any kind
    wanted = None if every else q.kinds & INDEXED_KINDS
    if wanted is not None and not wanted:
        return []
    if read_model is None:
        return _tail(store, team_id, task_id, q.after, q.limit, wanted)
    start, applied = read_model.timeline_span()  # first: the index holds all up to applied
    found: Found = []
    if q.after < start:
        found += _unindexed(store, team_id, task_id, read_model, q, start)
    after = max(q.after, start)
    if len(found) < q.limit and applied > after:
        rows = read_model.timeline(
            team_id, str(task_id), (after, applied), wanted, q.limit - len(found)
        )
        kinds = dict(rows)
        found += [(p, e, kinds[p]) for p, e in store.events_at(list(kinds), team_id)]
    if len(found) < q.limit:
        found += _tail(store, team_id, task_id, max(after, applied), q.limit - len(found), wanted)
    return found


def _tail(
    store: Store, team_id: str, task_id: UUID, after: int, limit: int, kinds: frozenset[str] | None
) -> Found:
    """The task's own events after ``after`` (those the read model has not applied yet)."""
    if kinds is not None and not kinds & OWN_KINDS:
        return []
    topics = None if kinds is None else _topics(kinds)
    found = store.events_of_many([task_id], team_id, after=after, limit=limit, topics=topics)
    return [(p, e, kind_of(e, {})) for p, e in found]


def _unindexed(
    store: Store, team_id: str, task_id: UUID, read_model: ReadModel, q: TimelineQuery, upto: int
) -> Found:
    """The page's events up to ``upto`` of a log the read model applied before it indexed
    timelines: the task's and its items' (from ``tw_hitl``) events, read by aggregate."""
    every = "webhooks" in q.kinds
    items = _items(read_model, team_id, str(task_id), None if every else q.kinds)
    wants_task = every or q.kinds & OWN_KINDS
    ids = [task_id, *items] if wants_task else list(items)
    topics = None if every else _topics(q.kinds)
    found = store.events_of_many(
        ids, team_id, after=q.after, limit=q.limit, topics=topics, upto=upto
    )
    return [(p, e, kind_of(e, items)) for p, e in found]


def _items(
    read_model: ReadModel, team_id: str, task_id: str, kinds: frozenset[str] | None
) -> dict[UUID, str]:
    """The task's items (id to kind) of the kinds asked for (None: every kind)."""
    wanted = tuple(k for k, name in ITEM_NAMES.items() if kinds is None or name in kinds)
    if not wanted:
        return {}
    found = read_model.hitl_kinds(team_id, task_id, wanted, MAX_ITEMS)
    return {UUID(i): ITEM_NAMES[kind] for i, kind in found.items()}


def _topics(kinds: frozenset[str]) -> list[str]:
    """The stored topics of the kinds' events (none of these classes has moved: their topics
    are the classes' own, ``application/topics.py``)."""
    classes: list[type] = [c for c, kind in TASK_KINDS.items() if kind in kinds]
    if "task" in kinds:
        classes += [c for c in event_classes(Task) if c not in TASK_KINDS]
    for kind, item in ITEM_CLASSES.items():
        if kind in kinds:
            classes += event_classes(item)
            classes.append(HitlItem.Withdrawn)
    return sorted({get_topic(c) for c in classes})


def kind_of(event: Any, items: dict[UUID, str]) -> str:
    if isinstance(event, Task.Event):
        return TASK_KINDS.get(type(event), "task")
    if isinstance(event, WebhookDelivery.Event):
        return "webhooks"
    return items.get(event.originator_id, "task")


def _event_entry(position: int, event: Any, kind: str, task_id: str) -> dict[str, Any]:
    data = event_data(event)
    if not (isinstance(event, Aggregate.Created) and str(event.originator_id) == task_id):
        for name in getattr(event, "PLACE", ()):  # the task's place: said once, on its creation
            data.pop(name, None)
    return {
        "position": position,
        "kind": kind,
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
