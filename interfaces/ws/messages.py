"""What a WebSocket client sends (decoded into Structs) and what the gateway sends back.

Client messages are seed 000's ``{"type": ..., ...}``; seed 002's ``{"event": ..., "data": {...}}``
with camelCase ids is read as the same thing. Server messages are ``{"type", "data", "timestamp"}``
(seed 000); a message made from an event also carries its log ``position`` and the key of the
``subscription`` it belongs to.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from application import limits
from application.commands import ExecutionOptions, PriorityIn, Ref
from application.limits import BadInputError
from application.principal import Principal
from application.public_events import PublicEvent
from interfaces.ws.filter import Spec

ChannelName = Literal["project_updates", "task_updates", "queue_status", "hitl"]
MetricName = Literal["performance", "queue_status", "system_health"]
Correlation = Annotated[str, Meta(max_length=100)]
ALIASES = {"authenticate": "auth", "projectId": "project_id", "taskId": "task_id"}


class Message(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="type"):
    id: Correlation | None = None  # echoed in the answer, to match it


class Auth(Message, tag="auth", frozen=True):
    token: Annotated[str, Meta(min_length=1, max_length=8_192)]


class Subscribe(Message, tag="subscribe", frozen=True):
    channel: ChannelName
    project_id: Ref | None = None
    task_id: Ref | None = None
    since: int | None = None  # replay what followed this position, then go on live


class Unsubscribe(Message, tag="unsubscribe", frozen=True):
    channel: ChannelName
    project_id: Ref | None = None
    task_id: Ref | None = None


class Ping(Message, tag="ping", frozen=True):
    timestamp: Any = None


class ExecuteTaskMessage(Message, tag="execute_task", frozen=True):
    task_id: Ref
    priority: PriorityIn | None = None
    options: ExecutionOptions = ExecutionOptions()


class GetMetrics(Message, tag="get_metrics", frozen=True):
    metrics: list[MetricName] | None = None  # None: all three
    period: Literal["1h", "24h", "7d"] = "24h"


ClientMessage = Auth | Subscribe | Unsubscribe | Ping | ExecuteTaskMessage | GetMetrics


class MessageError(Exception):
    """A message the gateway cannot read: answered with an ``error``, never a crash."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


def decode(raw: str | bytes, limit: int) -> ClientMessage:
    """A client message; raises MessageError for anything else."""
    if len(raw) > limit:
        raise MessageError("PAYLOAD_TOO_LARGE", f"message over {limit} bytes", limit=limit)
    try:
        document = limits.decode(raw.encode() if isinstance(raw, str) else raw)
    except BadInputError as refused:  # application/limits.py: depth, NUL, sizes, malformed
        raise MessageError(refused.code, refused.message, **refused.details) from None
    if not isinstance(document, dict):
        raise MessageError("VALIDATION_ERROR", "a message is a JSON object with a type")
    document = _normalized(document)
    kind = document.get("type")
    if kind not in _TAGS:
        raise MessageError(
            "UNKNOWN_MESSAGE_TYPE", f"unknown message type: {kind!r}", types=sorted(_TAGS)
        )
    try:
        return msgspec.convert(document, ClientMessage)
    except msgspec.ValidationError as error:
        raise MessageError("VALIDATION_ERROR", str(error)) from None


_TAGS = frozenset(str(cls.__struct_config__.tag) for cls in ClientMessage.__args__)


def _normalized(document: dict[str, Any]) -> dict[str, Any]:
    """Seed 002's ``{"event": "subscribe", "data": {"projectId": ...}}`` as seed 000's shape."""
    if "type" not in document and isinstance(document.get("event"), str):
        data = document.get("data")
        document = {"type": document["event"], **(data if isinstance(data, dict) else {})}
    named = {ALIASES.get(k, k): v for k, v in document.items()}
    if isinstance(named.get("type"), str):
        named["type"] = ALIASES.get(named["type"], named["type"])
    if named.get("type") in ("subscribe", "unsubscribe") and "channel" not in named:
        if "task_id" in named:
            named["channel"] = "task_updates"
        elif "project_id" in named:
            named["channel"] = "project_updates"  # seed 002 names only the project
    return named


# ---- server messages ---------------------------------------------------------------------------


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def reply(kind: str, data: Any, correlation: str | None = None, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"type": kind, "data": data, "timestamp": now(), **extra}
    if correlation is not None:
        message["id"] = correlation
    return message


def error(
    code: str, message: str, correlation: str | None = None, **details: Any
) -> dict[str, Any]:
    return reply("error", {"code": code, "message": message, "details": details}, correlation)


def who(principal: Principal) -> dict[str, Any]:
    return {
        "actor": principal.actor_id,
        "team_id": principal.team_id,
        "role": principal.role,
        "project_id": principal.project_id,
    }


def described(spec: Spec) -> dict[str, Any]:
    """A subscription, as ``subscribed``, ``unsubscribed`` and ``resync_required`` show it."""
    return {
        "channel": spec.channel,
        "subscription": spec.key,
        "task_id": spec.task_id,
        "project_id": spec.project_id,
    }


def performance_data(status: dict[str, Any], connections: int) -> dict[str, Any]:
    """Seed 000's ``performance_data`` from the queue status (``application.queues``)."""
    bands = status["queues"]
    return {
        "active_connections": connections,
        "tasks_per_minute": status["performance"]["tasks_per_minute"],
        "queue_sizes": {
            "high": bands["high_priority"]["size"],
            "normal": bands["normal_priority"]["size"],
            "low": bands["low_priority"]["size"],
        },
    }


# the status a task event leaves the task in, when it moves it
STATUS_AFTER = {
    "task.created": "pending",
    "task.execution_requested": "queued",
    "task.execution_started": "running",
    "task.resumed": "running",
    "task.review_requested": "awaiting_approval",
    "task.work_approved": "completed",
    "task.work_rejected": "queued",
    "task.cancelled": "cancelled",
    "task.expired_in_queue": "timed_out",
}
COMPLETING = frozenset({"task.execution_finished", "task.work_approved"})
AWAITING = frozenset({"question.asked", "checkpoint.requested", "experience.proposed"})
# where a person acts on an item (seed 000's notification actions)
ACTIONS = {
    "question": [("Answer", "answer", "/api/tasks/{task_id}/respond")],
    "checkpoint": [
        ("Approve", "approve", "/api/checkpoints/{item_id}/approve"),
        ("Reject", "reject", "/api/checkpoints/{item_id}/reject"),
    ],
    "experience": [
        ("Approve", "approve", "/api/experiences/{item_id}/approve"),
        ("Reject", "reject", "/api/experiences/{item_id}/reject"),
    ],
}


def event_message(
    event: PublicEvent, subscription: str, task_id: str | None, project_id: str | None
) -> dict[str, Any]:
    """The server message for one event: its type follows the event's aggregate. ``task_id`` and
    ``project_id``: where the event belongs (``Place.of(event)``)."""
    common = {
        "event": event.type,
        "version": event.version,
        "actor": event.actor,
        "payload": event.data,
    }
    if event.aggregate == "task":
        kind, data = _task(event)
    elif event.aggregate == "output":
        kind, data = "command_output", _output(event)
    elif event.aggregate in ACTIONS:
        kind, data = "notification", _notification(event, task_id, project_id)
    elif event.aggregate == "budget":
        kind, data = "notification", _budget(event, project_id)
    elif event.aggregate == "project":
        kind, data = "project_update", {"project_id": event.aggregate_id}
    else:
        kind, data = "queue_update", {"queue": event.data.get("band")}
    return {
        "type": kind,
        "position": event.position,
        "subscription": subscription,
        "data": {**data, **common},
        "timestamp": event.timestamp,
    }


def _task(event: PublicEvent) -> tuple[str, dict[str, Any]]:
    status = STATUS_AFTER.get(event.type)
    if event.type == "task.execution_finished":
        status = event.data.get("outcome")
    elif event.type == "task.status_changed":
        status = event.data.get("new")
    elif event.type == "task.input_requested":
        status = event.data.get("status")
    data: dict[str, Any] = {"task_id": event.aggregate_id, "updated_at": event.timestamp}
    if status is not None:
        data["status"] = status
    if event.type == "task.progress_reported":
        data["progress_percentage"] = event.data.get("percentage")
    if event.type not in COMPLETING:
        return "task_update", data
    result = event.data.get("result") if event.type == "task.execution_finished" else None
    result = result if isinstance(result, dict) else None
    data.update(
        status=status,
        result=result,
        completed_at=event.timestamp,
        exit_code=result.get("exit_code") if result else None,
        duration=result.get("duration") if result else None,
    )
    return "task_completed", data


def _output(event: PublicEvent) -> dict[str, Any]:
    return {
        "task_id": event.data.get("task_id"),
        "execution_id": event.data.get("execution_id"),
        "seq": event.data.get("seq"),
        "stream": event.data.get("stream"),
        "text": event.data.get("text"),
    }


def _budget(event: PublicEvent, project_id: str | None) -> dict[str, Any]:
    """A budget's threshold reached (``warning``) or its limit spent (``critical``)."""
    data = event.data
    exceeded = event.type == "budget.exceeded"
    what = "The team's daily cost limit" if data.get("scope") == "team" else "The project's budget"
    spent, limit = data.get("spent_usd") or 0.0, data.get("limit_usd") or 0.0
    verb = "is spent: no new execution starts" if exceeded else f"is {data.get('percent')}% spent"
    return {
        "level": "critical" if exceeded else "warning",
        "title": f"Budget {'exceeded' if exceeded else str(data.get('percent')) + '% reached'}",
        "message": f"{what} for {data.get('period')} {verb} ({spent:.2f} of {limit:.2f} USD)",
        "kind": "budget",
        "item_id": event.aggregate_id,
        "task_id": None,
        "project_id": project_id,
        "actions": [{"label": "Raise the limit", "action": "settings", "url": "/api/settings"}],
    }


def _notification(
    event: PublicEvent, task_id: str | None, project_id: str | None
) -> dict[str, Any]:
    kind, _, happened = event.type.partition(".")
    awaiting = event.type in AWAITING
    data = event.data
    texts = (data.get(k) for k in ("question", "description", "action", "title"))
    message = next((t for t in texts if isinstance(t, str) and t), "")
    if not awaiting:
        message = f"{kind} {happened}"
    places = {"task_id": task_id, "item_id": event.aggregate_id}
    actions = [
        {"label": label, "action": action, "url": url.format(**places)}
        for label, action, url in ACTIONS[kind]
    ]
    return {
        "level": "action_required" if awaiting else "info",
        "title": f"{kind.capitalize()} {'awaiting a decision' if awaiting else happened}",
        "message": message,
        "kind": kind,
        "item_id": event.aggregate_id,
        "task_id": task_id,
        "project_id": project_id,
        "actions": actions if awaiting else [],
    }
