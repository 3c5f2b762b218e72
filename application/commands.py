"""Commands: frozen, keyword-only Structs that reject unknown fields.

They are also the request bodies of the HTTP API, so the OpenAPI schema is generated from them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

Title = Annotated[str, Meta(min_length=1, max_length=500)]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
Text = Annotated[str, Meta(max_length=20_000)]
Reason = Annotated[str, Meta(max_length=2_000)]
Tag = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[^,\s][^,]*$")]
Tags = Annotated[list[Tag], Meta(max_length=50)]
Slug = Annotated[str, Meta(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")]
Ref = Annotated[str, Meta(min_length=1, max_length=100)]
Url = Annotated[str, Meta(max_length=2_000)]
ShortText = Annotated[str, Meta(max_length=500)]
PriorityIn = Annotated[int, Meta(ge=1, le=4)] | Literal["low", "normal", "high", "urgent"]
# seconds, or seed 000's "HH:MM:SS"
DurationIn = Annotated[float, Meta(ge=0)] | Annotated[str, Meta(pattern=r"^\d{1,6}:\d{2}:\d{2}$")]
Percentage = Annotated[int, Meta(ge=0, le=100)]
TaskStatusIn = Literal["pending", "completed", "cancelled"]
ProjectStatusIn = Literal["active", "archived", "completed"]


class Command(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every request body. Subclasses repeat ``frozen=True``: msgspec inherits it, mypy
    does not (it would take a subclass for a mutable one)."""


C = TypeVar("C")


class Targeted(Struct, Generic[C], frozen=True, kw_only=True):
    """A command to one existing object, as its handler takes it: ``target``, the object's id (or
    slug, where it has one), ``command``, what to do (the request body), and
    ``expected_version``, the version the caller last saw (``If-Match``; None: whatever is
    current, retried on a lost race)."""

    target: str
    command: C
    expected_version: int | None = None


class CreateTask(Command, frozen=True):
    title: Title
    project_id: Ref
    description: Text = ""
    priority: PriorityIn = "normal"
    tags: Tags = []
    metadata: dict[str, Any] = {}
    assigned_to: Annotated[str, Meta(max_length=200)] | None = None
    estimated_duration: DurationIn | None = None
    slug: Slug | None = None
    dependencies: Annotated[list[Ref], Meta(max_length=100)] = []
    repository_url: Url | None = None
    base_branch: ShortText | None = None
    ticket_id: ShortText | None = None
    ticket_summary: ShortText | None = None
    test_command: Url | None = None


class SubmitTask(Command, frozen=True):
    """Seed 003's repository task; lands in the team's default project unless one is named."""

    description: Annotated[str, Meta(min_length=1, max_length=20_000, pattern=r"\S")]
    repository_url: Url | None = None
    ticket_id: ShortText | None = None
    ticket_summary: ShortText | None = None
    test_command: Url | None = None
    base_branch: ShortText | None = None
    title: Title | None = None
    project_id: Ref | None = None
    priority: PriorityIn = "normal"


class UpdateTask(Command, frozen=True):
    """PUT and PATCH: every field optional, only the given ones change."""

    title: Title | UnsetType = UNSET
    description: Text | UnsetType = UNSET
    priority: PriorityIn | UnsetType = UNSET
    tags: Tags | UnsetType = UNSET
    metadata: dict[str, Any] | UnsetType = UNSET
    assigned_to: Annotated[str, Meta(max_length=200)] | None | UnsetType = UNSET
    estimated_duration: DurationIn | None | UnsetType = UNSET
    progress_percentage: Percentage | UnsetType = UNSET
    slug: Slug | None | UnsetType = UNSET
    status: TaskStatusIn | UnsetType = UNSET
    status_reason: Reason | None | UnsetType = UNSET
    dependencies: Annotated[list[Ref], Meta(max_length=100)] | UnsetType = UNSET
    repository_url: Url | None | UnsetType = UNSET
    base_branch: ShortText | None | UnsetType = UNSET
    ticket_id: ShortText | None | UnsetType = UNSET
    ticket_summary: ShortText | None | UnsetType = UNSET
    test_command: Url | None | UnsetType = UNSET


class ExecutionOptions(Command, frozen=True):
    timeout: Annotated[int, Meta(ge=1, le=86_400)] = 3_600
    retry_attempts: Annotated[int, Meta(ge=0, le=10)] = 0
    # seconds before the first automatic retry; doubled each time, with jitter, at most 5 minutes
    retry_backoff: Annotated[float, Meta(ge=0, le=300)] = 2.0
    queue_ttl: Annotated[int, Meta(ge=1, le=604_800)] | None = None
    agent: Annotated[str, Meta(max_length=100, pattern=r"^[a-z0-9_-]+$")] | None = None
    # finished work waits in awaiting_approval for a person (seed 002) instead of completing
    require_approval: bool = False


class ExecuteTask(Command, frozen=True):
    priority: PriorityIn | None = None
    options: ExecutionOptions = ExecutionOptions()


class CancelTask(Command, frozen=True):
    reason: Reason | None = None


class RetryTask(Command, frozen=True):
    priority: PriorityIn | None = None
    options: ExecutionOptions | None = None


class ApproveWork(Command, frozen=True):
    comment: Reason | None = None


class RejectWork(Command, frozen=True):
    reason: Annotated[str, Meta(min_length=1, max_length=2_000)]


class Respond(Command, frozen=True):
    """Seed 002's answer to the question an agent asked."""

    question_id: Ref
    response: Annotated[str, Meta(min_length=1, max_length=20_000)]


class Decide(Command, frozen=True):
    """Approve or reject a checkpoint, an experience or a HITL item; the reason is optional."""

    reason: Reason | None = None


class DeleteTask(Command, frozen=True):
    reason: Reason | None = None


class DeleteProject(Command, frozen=True):
    """Soft-delete a project (no body)."""


class SetPreferences(Command, frozen=True):
    """Replace a user's preferences with a JSON object (at most 16 KiB)."""

    preferences: dict[str, Any]


class RevokeApiKey(Command, frozen=True):
    """Refuse an API key from its next request on (no body)."""


BulkOperation = Literal[
    "update_status", "assign", "add_tags", "remove_tags", "delete", "set_priority"
]


class BulkTasks(Command, frozen=True):
    operation: BulkOperation
    task_ids: Annotated[list[Ref], Meta(min_length=1, max_length=100)]
    data: dict[str, Any] = {}


class BulkStatusData(Command, frozen=True):
    status: TaskStatusIn
    progress_percentage: Percentage | None = None
    reason: Reason | None = None


class BulkAssignData(Command, frozen=True):
    assigned_to: Annotated[str, Meta(max_length=200)] | None


class BulkTagsData(Command, frozen=True):
    tags: Annotated[list[Tag], Meta(min_length=1, max_length=50)]


class BulkPriorityData(Command, frozen=True):
    priority: PriorityIn


class BulkDeleteData(Command, frozen=True):
    reason: Reason | None = None


class TagTask(Command, frozen=True):
    """Add some tags to a task and remove others (bulk ``add_tags`` and ``remove_tags``)."""

    add: list[Tag] = []
    remove: list[Tag] = []


class ResourceLimits(Command, frozen=True):
    max_tasks: Annotated[int, Meta(ge=1)] | None = None
    max_concurrent_tasks: Annotated[int, Meta(ge=1, le=1_000)] | None = None
    storage_limit: Annotated[str, Meta(max_length=32)] | None = None


class CreateProject(Command, frozen=True):
    name: Name
    description: Text = ""
    slug: Slug | None = None
    settings: dict[str, Any] = {}
    resource_limits: ResourceLimits = ResourceLimits()
    status: ProjectStatusIn = "active"


class UpdateProject(Command, frozen=True):
    name: Name | UnsetType = UNSET
    description: Text | UnsetType = UNSET
    slug: Slug | None | UnsetType = UNSET
    settings: dict[str, Any] | UnsetType = UNSET
    resource_limits: ResourceLimits | UnsetType = UNSET
    status: ProjectStatusIn | UnsetType = UNSET


class CloneProject(Command, frozen=True):
    name: Name
    slug: Slug | None = None
    include_tasks: bool = False
    include_settings: bool = True


def given(command: Struct) -> dict[str, Any]:
    """The fields a partial command actually carries."""
    return {
        f: getattr(command, f)
        for f in command.__struct_fields__
        if getattr(command, f) is not msgspec.UNSET
    }


Username = Annotated[str, Meta(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Password = Annotated[str, Meta(min_length=8, max_length=256)]
RoleIn = Literal["admin", "operator", "approver", "viewer", "agent"]


class CreateUser(Command, frozen=True):
    username: Username
    password: Password
    role: RoleIn = "viewer"
    email: Annotated[str, Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    full_name: Annotated[str, Meta(max_length=200)] | None = None


class Login(Command, frozen=True):
    username: Annotated[str, Meta(min_length=1, max_length=64)]
    password: Annotated[str, Meta(min_length=1, max_length=256)]


class RefreshToken(Command, frozen=True):
    refresh_token: Annotated[str, Meta(min_length=1, max_length=512)]


class MintToken(Command, frozen=True):
    team_id: Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
    role: RoleIn


class CreateApiKey(Command, frozen=True):
    """A key for programs; ``expires_at`` (RFC 3339, with a zone) or ``expires_in_days``."""

    name: Name
    role: RoleIn = "viewer"
    project_id: Ref | None = None  # the one project the key may see and touch (id or slug)
    expires_at: Annotated[datetime, Meta(tz=True)] | None = None
    expires_in_days: Annotated[int, Meta(ge=1, le=3650)] | None = None


class UpdateUser(Command, frozen=True):
    """``PATCH /api/users/{id}``: only the given fields change; ``disabled`` false re-enables."""

    email: Annotated[str, Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")] | None | UnsetType = (
        UNSET
    )
    full_name: Annotated[str, Meta(max_length=200)] | None | UnsetType = UNSET
    role: RoleIn | UnsetType = UNSET
    disabled: bool | UnsetType = UNSET
    password: Password | UnsetType = UNSET
