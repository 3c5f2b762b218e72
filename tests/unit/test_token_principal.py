"""What a service token's signature alone decides (``authenticate_without_store``): its team
and role claims name a team and one of the roles, else it is refused."""

from __future__ import annotations

import pytest

from application.auth import authenticate_without_store
from application.errors import AuthenticationError
from domain.values import Role
from infrastructure.tokens import JwtCodec

CODEC = JwtCodec(b"k" * 32)


def _token(**claims: object) -> str:
    return CODEC.issue({"typ": "access", "sub": "service:ci", **claims})


@pytest.mark.parametrize("role", list(Role))
def test_a_token_naming_a_team_and_a_role_is_that_principal(role: Role) -> None:
    principal = authenticate_without_store(CODEC, _token(team="team-a", role=role.value))
    assert principal is not None
    assert (principal.team_id, principal.role, principal.actor_id) == ("team-a", role, "service:ci")


@pytest.mark.parametrize(
    "claims",
    [
        {"team": "team-a", "role": "owner"},
        {"team": "team-a"},
        {"role": "admin"},
        {"team": 7, "role": "admin"},
        {"team": "team-a", "role": "ADMIN"},
    ],
)
def test_a_token_without_a_team_or_a_known_role_is_refused(claims: dict[str, object]) -> None:
    with pytest.raises(AuthenticationError, match="lacks a team or a role"):
        authenticate_without_store(CODEC, _token(**claims))
