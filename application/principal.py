"""Who is calling: resolved from a JWT or an API key on every request."""

from __future__ import annotations

from uuid import UUID

import msgspec

from application.errors import PermissionDeniedError
from application.store import narrow_to_project
from domain.values import GRANTS, Actor, Permission, Role


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    actor_id: str  # "user:<id>", "key:<id>" or "token:<jti>"
    team_id: str
    role: str
    kind: str  # user, api_key, token
    user_id: str | None = None
    project_id: str | None = None  # an API key scoped to one project

    @property
    def user_uuid(self) -> UUID:
        return UUID(self.user_id or "")

    def allows(self, permission: Permission) -> bool:
        """What the role grants; a project-scoped key never administers the team (users, keys),
        whatever its role, or it could mint itself a key for the whole team."""
        if self.project_id is not None and permission is Permission.ADMIN:
            return False
        return permission in GRANTS[Role(self.role)]

    def require(self, permission: Permission) -> None:
        if not self.allows(permission):
            role = self.role if self.project_id is None else f"{self.role} (project-scoped)"
            raise PermissionDeniedError(permission.value, role)

    def actor(self, request_id: str) -> Actor:
        """Who acts in this request; also narrows the store, for the rest of the request's
        context, to the principal's project if the principal is scoped to one."""
        narrow_to_project(self.project_id)
        return Actor(id=self.actor_id, team_id=self.team_id, request_id=request_id)
