"""What an agent asks of people: questions, checkpoints and proposed experiences.

Each is its own small aggregate, so that its id (the one people answer by) loads it directly, and
the decision is recorded once: the same decision twice is one decision, a contrary one is refused.
A question or checkpoint is answered in the same transaction as the task it holds up.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from eventsourcing.domain import event

from domain.errors import InvalidTransitionError
from domain.place import IN_TASK, Placed

PENDING = "pending"
ANSWERED = "answered"
APPROVED = "approved"
REJECTED = "rejected"
WITHDRAWN = "withdrawn"  # the execution ended (cancel, timeout, crash) before anyone answered


def made_by_nobody_known(state: dict[str, Any]) -> None:
    """An item's creation stored before version 3 names neither its maker nor the request."""
    state.setdefault("actor", None)
    state.setdefault("request_id", None)


class HitlItem(Placed):
    """What every item has: team_id, project_id, task_id, execution_id, status (pending first),
    decided_by, reason. (No class annotations: on an aggregate they would become event fields.
    Those below are for the type checker only: it does not see what ``@event`` makes.)"""

    class Event(Placed.Event):
        PLACE = IN_TASK
        project_id: str
        task_id: str

    class Decided(Event):
        """What a decision's events have in common (answered, approved, rejected, withdrawn):
        who made it and, from version 3, the request it was made in (None in older events and
        in decisions no request made, such as the scheduler's)."""

        class_version = 3
        actor: str
        request_id: str | None

        @classmethod
        def upcast_v2_v3(cls, state: dict[str, Any]) -> None:
            state.setdefault("request_id", None)

    class Withdrawn(Decided):
        """Shared by the three kinds of item: ``item`` says which (question, checkpoint,
        experience), so that the event alone says what was withdrawn."""

        reason: str
        item: str

        @classmethod
        def unplaced(cls, state: dict[str, Any]) -> None:
            super().unplaced(state)
            state.setdefault("item", None)

    @property
    def item(self) -> str:
        return type(self).__name__.lower()

    if TYPE_CHECKING:
        team_id: str
        project_id: str
        task_id: str
        execution_id: str
        status: str
        decided_by: str | None
        reason: str | None

    def _require_pending(self, wanted: str, same_as_before: bool) -> bool:
        """True if a decision is still to be made; False when this one was already made."""
        if self.status == PENDING:
            return True
        if self.status == wanted and same_as_before:
            return False
        raise InvalidTransitionError(
            f"this {type(self).__name__.lower()} is already {self.status}", status=self.status
        )

    def withdraw(self, reason: str, actor: str, request_id: str | None = None) -> None:
        if self.status == PENDING:
            self._withdrawn(reason=reason, actor=actor, item=self.item, request_id=request_id)

    @event(Withdrawn)
    def _withdrawn(self, reason: str, actor: str, item: str, request_id: str | None) -> None:
        self.status = WITHDRAWN
        self.reason = reason
        self.decided_by = actor


class Question(HitlItem):
    """The agent waits for an answer; the task waits in ``needs_input``."""

    class Asked(HitlItem.Created):
        """Version 3 names who asked (the worker) and the request (its execution)."""

        class_version = 3
        execution_id: str
        question: str
        options: list[str]
        default: str | None
        deadline: datetime | None
        actor: str | None
        request_id: str | None

        @classmethod
        def upcast_v2_v3(cls, state: dict[str, Any]) -> None:
            made_by_nobody_known(state)

    @event(Asked)
    def __init__(  # noqa: PLR0913
        self,
        *,
        team_id: str,
        project_id: str,
        task_id: str,
        execution_id: str,
        question: str,
        options: list[str],
        default: str | None,
        deadline: datetime | None,
        actor: str | None,
        request_id: str | None,
    ) -> None:
        self.team_id = team_id
        self.project_id = project_id
        self.task_id = task_id
        self.execution_id = execution_id
        self.question = question
        self.options = list(options)
        self.default = default
        self.deadline = deadline
        self.status = PENDING
        self.response: str | None = None
        self.decided_by: str | None = None
        self.reason: str | None = None
        self.by_default = False

    class Answered(HitlItem.Decided):
        response: str
        by_default: bool

    def answer(
        self,
        response: str,
        actor: str,
        *,
        by_default: bool = False,
        request_id: str | None = None,
    ) -> bool:
        """Returns False when the same answer was already given."""
        if not self._require_pending(ANSWERED, response == self.response):
            return False
        self._answered(response=response, actor=actor, by_default=by_default, request_id=request_id)
        return True

    @event(Answered)
    def _answered(
        self, response: str, actor: str, by_default: bool, request_id: str | None
    ) -> None:
        self.status = ANSWERED
        self.response = response
        self.decided_by = actor
        self.by_default = by_default


class Checkpoint(HitlItem):
    """The agent waits for approval of an action; the task waits in ``awaiting_approval``."""

    class Requested(HitlItem.Created):
        """Version 3 names who asked (the worker) and the request (its execution)."""

        class_version = 3
        execution_id: str
        action: str
        description: str | None
        data: dict[str, Any]
        deadline: datetime | None
        actor: str | None
        request_id: str | None

        @classmethod
        def upcast_v2_v3(cls, state: dict[str, Any]) -> None:
            made_by_nobody_known(state)

    @event(Requested)
    def __init__(  # noqa: PLR0913
        self,
        *,
        team_id: str,
        project_id: str,
        task_id: str,
        execution_id: str,
        action: str,
        description: str | None,
        data: dict[str, Any],
        deadline: datetime | None,
        actor: str | None,
        request_id: str | None,
    ) -> None:
        self.team_id = team_id
        self.project_id = project_id
        self.task_id = task_id
        self.execution_id = execution_id
        self.action = action
        self.description = description
        self.data = dict(data)
        self.deadline = deadline
        self.status = PENDING
        self.decided_by: str | None = None
        self.reason: str | None = None
        self.by_default = False

    class Approved(HitlItem.Decided):
        reason: str | None
        by_default: bool

    class Rejected(HitlItem.Decided):
        reason: str | None
        by_default: bool

    def decide(  # noqa: PLR0913
        self,
        approved: bool,
        reason: str | None,
        actor: str,
        *,
        by_default: bool = False,
        request_id: str | None = None,
    ) -> bool:
        """Returns False when the same decision was already made; a contrary one raises."""
        wanted = APPROVED if approved else REJECTED
        if not self._require_pending(wanted, True):
            return False
        decision = self._approved if approved else self._rejected
        decision(reason=reason, actor=actor, by_default=by_default, request_id=request_id)
        return True

    @event(Approved)
    def _approved(
        self, reason: str | None, actor: str, by_default: bool, request_id: str | None
    ) -> None:
        self.status = APPROVED
        self.reason = reason
        self.decided_by = actor
        self.by_default = by_default

    @event(Rejected)
    def _rejected(
        self, reason: str | None, actor: str, by_default: bool, request_id: str | None
    ) -> None:
        self.status = REJECTED
        self.reason = reason
        self.decided_by = actor
        self.by_default = by_default


class Experience(HitlItem):
    """A lesson the agent proposes for the team's memory (seed 001); nothing waits on it."""

    class Proposed(HitlItem.Created):
        """Version 3 names who proposed it (the worker) and the request (its execution)."""

        class_version = 3
        execution_id: str
        title: str
        content: str
        tags: list[str]
        actor: str | None
        request_id: str | None

        @classmethod
        def upcast_v2_v3(cls, state: dict[str, Any]) -> None:
            made_by_nobody_known(state)

    @event(Proposed)
    def __init__(  # noqa: PLR0913
        self,
        *,
        team_id: str,
        project_id: str,
        task_id: str,
        execution_id: str,
        title: str,
        content: str,
        tags: list[str],
        actor: str | None,
        request_id: str | None,
    ) -> None:
        self.team_id = team_id
        self.project_id = project_id
        self.task_id = task_id
        self.execution_id = execution_id
        self.title = title
        self.content = content
        self.tags = list(tags)
        self.status = PENDING
        self.decided_by: str | None = None
        self.reason: str | None = None

    class Approved(HitlItem.Decided):
        reason: str | None

    class Rejected(HitlItem.Decided):
        reason: str | None

    def decide(
        self, approved: bool, reason: str | None, actor: str, request_id: str | None = None
    ) -> bool:
        wanted = APPROVED if approved else REJECTED
        if not self._require_pending(wanted, True):
            return False
        decision = self._approved if approved else self._rejected
        decision(reason=reason, actor=actor, request_id=request_id)
        return True

    @event(Approved)
    def _approved(self, reason: str | None, actor: str, request_id: str | None) -> None:
        self.status = APPROVED
        self.reason = reason
        self.decided_by = actor

    @event(Rejected)
    def _rejected(self, reason: str | None, actor: str, request_id: str | None) -> None:
        self.status = REJECTED
        self.reason = reason
        self.decided_by = actor
