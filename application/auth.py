"""Authentication: bearer tokens (JWTs, ``tw_`` API keys), login, refresh with rotation, logout,
and admin-key token minting (seed 001)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from application.errors import (
    AdminKeyNotConfiguredError,
    AuthenticationError,
)
from application.ports import InvalidTokenError, PasswordHasher, TokenCodec
from application.principal import Principal
from application.store import Store
from domain.claim import SlugClaim, claim_id
from domain.credentials import ApiKey, RefreshFamily
from domain.user import User
from domain.values import Actor, Role

API_KEY_PREFIX = "tw_"
ROLES = frozenset(r.value for r in Role)  # a token's role claim must name one
KEY_USE_RECORD_INTERVAL = timedelta(minutes=1)
ROTATION = "refresh-rotation"  # TokenCodec.derive purposes
ACCESS_ID = "refresh-access-jti"
# verified against when the username is unknown, so both answers take the same time
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def digest(secret: str) -> str:
    """API keys and refresh tokens are long random secrets: a plain SHA-256 is enough."""
    return hashlib.sha256(secret.encode()).hexdigest()


USERNAMES = ("*", "username")  # usernames are unique across teams: one claim space


def username_claim(username: str) -> UUID:
    team, kind = USERNAMES
    return claim_id(team, f"slug:{kind}", username.lower())


def authenticate(store: Store, codec: TokenCodec, credential: str | None) -> Principal:
    principal = authenticate_without_store(codec, credential)
    if principal is not None:
        return principal
    presented = credential or ""  # never empty here: refused above
    if presented.startswith(API_KEY_PREFIX):
        return _api_key_principal(store, presented)
    return _user_principal(store, str(codec.read(presented)["sub"]).removeprefix("user:"))


def authenticate_without_store(codec: TokenCodec, credential: str | None) -> Principal | None:
    """Answers (or refuses) what a signature alone can decide, with no I/O: fit for the event
    loop. None means the store must be asked (a user's token, an API key)."""
    if not credential:
        raise AuthenticationError("authentication required", "AUTH_TOKEN_MISSING")
    if credential.startswith(API_KEY_PREFIX):
        return None
    try:
        claims = codec.read(credential)
    except InvalidTokenError as error:
        raise AuthenticationError(f"invalid token: {error}") from None
    if claims.get("typ") != "access":
        raise AuthenticationError("not an access token")
    subject = str(claims["sub"])
    if subject.startswith("user:"):
        return None
    team, role = claims.get("team"), claims.get("role")
    if not isinstance(team, str) or role not in ROLES:
        raise AuthenticationError("token lacks a team or a role")
    return Principal(actor_id=subject, team_id=team, role=str(role), kind="token")


def _user_principal(store: Store, user_id: str) -> Principal:
    """The user's current role and state: a disabled user loses access at once."""
    user = _load(store, User, user_id)
    if user is None:
        raise AuthenticationError("unknown user")
    if user.disabled:
        raise AuthenticationError("account is disabled", "AUTH_ACCOUNT_DISABLED")
    return Principal(
        actor_id=f"user:{user.id}",
        team_id=user.team_id,
        role=user.role,
        kind="user",
        user_id=str(user.id),
    )


def _api_key_principal(store: Store, credential: str) -> Principal:
    key_id, _, secret = credential.removeprefix(API_KEY_PREFIX).partition("_")
    key = _load(store, ApiKey, key_id) if secret else None
    if key is None or not hmac.compare_digest(key.secret_hash, digest(credential)):
        raise AuthenticationError("invalid API key")
    now = store.clock.now()
    if not key.usable(now):
        raise AuthenticationError("API key revoked or expired")
    if key.last_used_at is None or now - key.last_used_at > KEY_USE_RECORD_INTERVAL:
        key.record_use(now)
        store.commit(key)  # best kept, not critical: a lost race only loses a timestamp
    return Principal(
        actor_id=f"key:{key.id}",
        team_id=key.team_id,
        role=key.role,
        kind="api_key",
        project_id=key.project_id,
    )


A = TypeVar("A", bound=Aggregate)


def _load(store: Store, cls: type[A], raw_id: str) -> A | None:
    try:
        aggregate_id = UUID(raw_id)
    except ValueError:
        return None
    return store.find(cls, aggregate_id)


def mint_token(
    codec: TokenCodec, configured_key: str | None, presented: str | None, team_id: str, role: str
) -> dict[str, Any]:
    """Seed 001: ``X-Admin-Key`` buys a token for any team and role."""
    if not configured_key:
        raise AdminKeyNotConfiguredError("no admin key is configured")
    if not presented or not hmac.compare_digest(presented.encode(), configured_key.encode()):
        raise AuthenticationError("invalid admin key")
    subject = f"token:{uuid4().hex[:16]}"
    token = codec.issue({"sub": subject, "team": team_id, "role": role, "typ": "access"})
    return {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": codec.access_ttl,
        "team_id": team_id,
        "role": role,
    }


def login(
    store: Store,
    codec: TokenCodec,
    hasher: PasswordHasher,
    username: str,
    password: str,
    refresh_ttl: int,
    request_id: str,
) -> dict[str, Any]:
    user = _user_by_name(store, username)
    if user is None:
        hasher.verify(password, _DUMMY_HASH)
        raise AuthenticationError("wrong username or password")
    if not hasher.verify(password, user.password_hash):
        raise AuthenticationError("wrong username or password")
    if user.disabled:
        raise AuthenticationError("account is disabled", "AUTH_ACCOUNT_DISABLED")
    now = store.clock.now()
    family_secret = secrets.token_urlsafe(32)
    family = RefreshFamily(
        user_id=str(user.id),
        team_id=user.team_id,
        secret_hash=digest(family_secret),
        expires_at=now + timedelta(seconds=refresh_ttl),
    )
    actor = Actor(id=f"user:{user.id}", team_id=user.team_id, request_id=request_id)
    user.record_login(now, actor)
    store.commit(user, family)
    return _tokens(codec, user, family, family_secret)


def refresh(
    store: Store,
    codec: TokenCodec,
    token: str,
    refresh_ttl: int,
    *,
    grace_seconds: float = 0.0,
) -> dict[str, Any]:
    """Each refresh token works once; a used one presented again revokes its whole family (a
    replay: assume it was stolen). Except within ``grace_seconds`` of its use, while the token it
    was exchanged for is still unused: then it gets the same answer as its first use (a client
    that sent it twice at once, two tabs refreshing together).

    The same answer without keeping it: the next secret is derived from the used one (an HMAC under
    the server's key, ``TokenCodec.derive``), and the access token from the rotation's time and
    that secret, so every process can compute the pair again while the store holds digests only.
    """
    family_id, _, secret = token.partition(".")
    if not secret:
        raise AuthenticationError("invalid refresh token")
    at = store.clock.now()

    def decide() -> dict[str, Any]:
        family = _load(store, RefreshFamily, family_id)
        if family is None:
            raise AuthenticationError("invalid refresh token")
        if family.revoked:
            raise AuthenticationError("refresh token revoked")
        presented = digest(secret)
        successor = codec.derive(ROTATION, f"{family.id.hex}.{secret}")
        if hmac.compare_digest(family.secret_hash, presented):
            if at >= family.expires_at:
                raise AuthenticationError("refresh token expired")
            user = _active_user(store, family)
            family.rotate(digest(successor), at + timedelta(seconds=refresh_ttl), at)
            store.commit(family)
        elif _sent_again_in_grace(family, presented, digest(successor), at, grace_seconds):
            user = _active_user(store, family)
        else:
            family.revoke("reuse")
            store.commit(family)
            raise AuthenticationError("refresh token already used; the session is revoked")
        return _tokens(codec, user, family, successor, rotated_at=family.rotated_at)

    return store.with_retries(decide)  # two uses at once: the loser decides again, in the grace


def _sent_again_in_grace(
    family: RefreshFamily, presented: str, successor: str, at: datetime, grace: float
) -> bool:
    """The secret used last, again, soon enough, and what it was exchanged for is still unused."""
    return (
        grace > 0
        and family.previous_secret_hash is not None
        and family.rotated_at is not None
        and hmac.compare_digest(family.previous_secret_hash, presented)
        and at - family.rotated_at <= timedelta(seconds=grace)
        and hmac.compare_digest(family.secret_hash, successor)
    )


def _active_user(store: Store, family: RefreshFamily) -> User:
    user = _load(store, User, family.user_id)
    if user is None or user.disabled:
        raise AuthenticationError("account is disabled", "AUTH_ACCOUNT_DISABLED")
    return user


def logout(store: Store, token: str) -> None:
    family_id, _, secret = token.partition(".")
    family = _load(store, RefreshFamily, family_id) if secret else None
    if family is None or not hmac.compare_digest(family.secret_hash, digest(secret)):
        raise AuthenticationError("invalid refresh token")
    family.revoke("logout")
    store.commit(family)


def _tokens(
    codec: TokenCodec,
    user: User,
    family: RefreshFamily,
    secret: str,
    rotated_at: datetime | None = None,
) -> dict[str, Any]:
    """After a rotation the access token is issued at the rotation's time with an id derived from
    the new secret: computed again, it is the same token."""
    claims = {"sub": f"user:{user.id}", "typ": "access"}
    if rotated_at is None:
        access = codec.issue(claims)
    else:
        access = codec.issue(
            claims, at=rotated_at.timestamp(), jti=codec.derive(ACCESS_ID, secret)[:16]
        )
    return {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": codec.access_ttl,
        "refresh_token": f"{family.id.hex}.{secret}",
        "user": {"id": str(user.id), "username": user.username, "email": user.email},
    }


def _user_by_name(store: Store, username: str) -> User | None:
    claim = store.find(SlugClaim, username_claim(username))
    if claim is None or claim.holder is None:
        return None
    return _load(store, User, claim.holder)
