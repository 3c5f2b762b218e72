"""What a command handler answers: what it did, in the domain's words, and where that landed in
the log.

A handler never says how an interface shows it: no status codes, no response messages. The kind
of result (an object created, changed, deleted, an execution queued, a cancellation, a batch of
items each done or refused) is what the HTTP layer maps to a status and a body, in the same table
as the errors (``interfaces/http/errors.py``).
"""

from __future__ import annotations

from typing import Any

import msgspec


class Result(msgspec.Struct, frozen=True, kw_only=True):
    """``position``: the log position of the last event written, or the current one when the
    command wrote nothing. ``replayed``: an earlier command with the same ``Idempotency-Key``
    gave this result; nothing was written now."""

    position: int
    replayed: bool = False


class Represented(Result, frozen=True):
    """A result shown by ``data``, the representation of what the command wrote."""

    data: dict[str, Any]


class Created(Represented, frozen=True):
    """A new object (task, project, user, key, webhook, notice)."""


class Changed(Represented, frozen=True):
    """An object after the command (the same as before when there was nothing to change)."""


class Requested(Represented, frozen=True):
    """Something was asked for that happens later: an execution, a quarantined event processed
    again, a program that runs on."""


class Queued(Requested, frozen=True):
    """An execution was requested and waits in the queue."""


class Submitted(Represented, frozen=True):
    """A new task, created and queued in one step (seed 003): ``task_id`` and ``status``."""


class Deleted(Represented, frozen=True):
    """An object was deleted; ``kind`` names what it was (task, project, webhook)."""

    kind: str


class Cancellation(Result, frozen=True):
    """A task's cancel: ``now`` when it was cancelled at once, else its agent was asked to stop
    (it stops later). ``task`` is the task's representation after the command."""

    task: dict[str, Any]
    now: bool
    reason: str | None


class Refused(msgspec.Struct, frozen=True):
    """One item of a batch that failed alone: which, and why (a domain or application error)."""

    ref: str
    error: Exception


class Batch(Result, frozen=True):
    """One operation applied to many items, each done or refused alone; ``data`` says what the
    operation was."""

    data: dict[str, Any]
    done: list[str]
    refused: list[Refused]
