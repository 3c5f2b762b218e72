"""Who is calling: resolved from a JWT or an API key on every request."""

from __future__ import annotations

from uuid import UUID

import msgspec

from application.errors import PermissionDeniedError
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
        return permission in GRANTS[Role(self.role)]

    def require(self, permission: Permission) -> None:
        if not self.allows(permission):
            raise PermissionDeniedError(permission.value, self.role)

    def actor(self, request_id: str) -> Actor:
        return Actor(id=self.actor_id, team_id=self.team_id, request_id=request_id)
