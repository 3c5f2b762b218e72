"""Value vocabularies shared by the aggregates: statuses, priorities, the actor of a change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum, StrEnum


class TaskStatus(str, Enum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    NEEDS_INPUT = "needs_input"
    AWAITING_APPROVAL = "awaiting_approval"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


ACTIVE = frozenset(
    {TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.NEEDS_INPUT, TaskStatus.AWAITING_APPROVAL}
)
FINISHED_UNSUCCESSFULLY = frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMED_OUT})
TERMINAL = FINISHED_UNSUCCESSFULLY | {TaskStatus.COMPLETED}

# Every legal move of the status machine (DESIGN.md). Anything else is refused.
TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.QUEUED, TaskStatus.CANCELLED, TaskStatus.COMPLETED}),
    TaskStatus.QUEUED: frozenset(
        {TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.CANCELLED, TaskStatus.TIMED_OUT}
    ),
    TaskStatus.RUNNING: frozenset(
        {
            TaskStatus.NEEDS_INPUT,
            TaskStatus.AWAITING_APPROVAL,
            TaskStatus.COMPLETED,
            TaskStatus.FAILED,
            TaskStatus.CANCELLED,
            TaskStatus.TIMED_OUT,
        }
    ),
    TaskStatus.NEEDS_INPUT: frozenset(
        {TaskStatus.RUNNING, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMED_OUT}
    ),
    TaskStatus.AWAITING_APPROVAL: frozenset(
        {
            TaskStatus.RUNNING,
            TaskStatus.QUEUED,
            TaskStatus.COMPLETED,
            TaskStatus.FAILED,
            TaskStatus.CANCELLED,
            TaskStatus.TIMED_OUT,
        }
    ),
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.FAILED: frozenset({TaskStatus.QUEUED}),
    TaskStatus.CANCELLED: frozenset({TaskStatus.QUEUED}),
    TaskStatus.TIMED_OUT: frozenset({TaskStatus.QUEUED}),
}

# Moves a person may make directly (PUT status, bulk update_status); the rest belong to the runner.
MANUAL_TARGETS = frozenset({TaskStatus.PENDING, TaskStatus.COMPLETED, TaskStatus.CANCELLED})


class Priority(int, Enum):
    LOW = 1
    NORMAL = 2
    HIGH = 3
    URGENT = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: int | str) -> Priority:
        """Accepts 1 to 4 or a name; anything else raises ValueError."""
        if isinstance(value, bool):
            raise ValueError("priority must be low, normal, high, urgent or 1 to 4")
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[value.strip().upper()]
        except KeyError:
            raise ValueError("priority must be low, normal, high, urgent or 1 to 4") from None


class ProjectStatus(str, Enum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    COMPLETED = "completed"


@dataclass(frozen=True)
class Actor:
    """Who asked for a change, on behalf of which team, in which request."""

    id: str
    team_id: str
    request_id: str = ""


RFC3339 = "%Y-%m-%dT%H:%M:%S.%fZ"
MIN_PADDED_YEAR = 1000  # from here on, isoformat's year is strftime's (four digits)


def rfc3339(moment: datetime | None) -> str | None:
    """RFC 3339 UTC with microseconds and ``Z``: exact enough to pass back as ``as_of``, and
    fixed-width, so that it sorts as text in time order."""
    global _last_formatted  # noqa: PLW0603 - a cache of one
    if moment is None:
        return None
    last = _last_formatted  # a new task's creation, last change and activity are one moment
    if last[0] is moment:
        return last[1]
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    if utc.year >= MIN_PADDED_YEAR:  # the same text, about twice as fast (the projections and
        text = utc.isoformat(timespec="microseconds")[:-6] + "Z"  # every answer format many)
    else:
        text = utc.strftime(RFC3339)  # isoformat would pad the year, strftime does not
    _last_formatted = (moment, text)  # one tuple, read and replaced whole (thread-safe)
    return text


_last_formatted: tuple[datetime | None, str] = (None, "")


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"  # create, update, execute, cancel
    APPROVER = "approver"  # answer, approve, reject
    VIEWER = "viewer"  # read
    AGENT = "agent"  # worker credentials


class Permission(StrEnum):
    READ = "read"
    OPERATE = "operate"
    DECIDE = "decide"
    ADMIN = "admin"
    AGENT = "agent"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: frozenset({Permission.READ, Permission.OPERATE}),
    Role.APPROVER: frozenset({Permission.READ, Permission.DECIDE}),
    Role.VIEWER: frozenset({Permission.READ}),
    Role.AGENT: frozenset({Permission.AGENT}),
}
