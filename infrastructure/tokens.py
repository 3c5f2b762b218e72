"""Access tokens: HS256 JWTs with issuer, audience, issue and expiry times all required.

Verifying one costs about 0.1 ms of CPU (base64, JSON, HMAC, PyJWT's claim checks) on every request
that presents it, and a client presents the same token for its whole life. What a verification
answers depends on the token, the secret and the time alone (access tokens are not revoked one by
one: they expire; logout and reuse revoke the refresh family, and a disabled user is refused by
the store on each request), so ``VerifiedTokens`` remembers the claims of a token that verified,
until its expiry or for ``max_age`` seconds, whichever comes first, and at most ``size`` tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt

from application.ports import InvalidTokenError
from infrastructure.private_files import keep_first

ISSUER = "taskwarden"
AUDIENCE = "taskwarden-api"
MIN_SECRET_BYTES = 32
SECRET_FILE = "jwt_secret"  # noqa: S105 - a file name, not a secret
VERIFIED_SIZE = 10_000  # tokens remembered at most (a few MB)
VERIFIED_SECONDS = 60.0  # how long at most a verification is remembered


class VerifiedTokens:
    """The claims of tokens that ``verify`` accepted, each until its ``exp`` (or ``max_age``
    seconds after it was verified, whichever comes first), at most ``size`` of them: a token is
    verified again once that passes. A refused token is never remembered."""

    def __init__(
        self,
        verify: Callable[[str], dict[str, Any]],
        *,
        size: int = VERIFIED_SIZE,
        max_age: float = VERIFIED_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._verify = verify
        self._size = size
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._known: dict[str, tuple[float, dict[str, Any]]] = {}

    def read(self, token: str) -> dict[str, Any]:
        now = self._clock()
        known = self._known.get(token)
        if known is not None and now < known[0]:
            return dict(known[1])  # a copy: a caller may change what it got
        claims = self._verify(token)
        until = min(float(claims.get("exp", now)), now + self._max_age)
        if now < until:
            with self._lock:
                if len(self._known) >= self._size:
                    self._make_room(now)
                self._known[token] = (until, dict(claims))
        return claims

    def __len__(self) -> int:
        return len(self._known)

    def _make_room(self, now: float) -> None:
        """Forgets the expired, then the older half if that was not enough (caller holds the
        lock)."""
        kept = {t: k for t, k in self._known.items() if now < k[0]}
        if len(kept) >= self._size:
            kept = dict(list(kept.items())[len(kept) // 2 :])
        self._known = kept


class JwtCodec:
    def __init__(self, secret: bytes, access_ttl: int = 900) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self.access_ttl = access_ttl
        self._verified = VerifiedTokens(self._verify)

    def issue(
        self, claims: dict[str, Any], *, at: float | None = None, jti: str | None = None
    ) -> str:
        now = int(time.time() if at is None else at)
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + self.access_ttl,
            "jti": jti or secrets.token_hex(8),
            **claims,
        }
        return jwt.encode(payload, self._secret, algorithm="HS256")

    def derive(self, purpose: str, material: str) -> str:
        """HMAC-SHA256 of ``material`` under a key derived from the JWT secret for ``purpose``
        alone, so a value derived for one purpose says nothing about another, nor about the
        secret."""
        key = hmac.new(self._secret, f"taskwarden/derive/{purpose}".encode(), hashlib.sha256)
        mac = hmac.new(key.digest(), material.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def read(self, token: str) -> dict[str, Any]:
        """The token's claims if it verifies now (remembered: ``VerifiedTokens``), else
        ``InvalidTokenError``."""
        return self._verified.read(token)

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],  # never "none", never an algorithm named by the token
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
                leeway=5,
            )
        except jwt.PyJWTError as error:
            raise InvalidTokenError(str(error)) from None


def load_secret(configured: str | None, data_dir: Path) -> bytes:
    """``TASKWARDEN_JWT_SECRET``, or one generated once and kept (mode 0600) in the data dir."""
    if configured:
        return configured.encode()
    path = data_dir / SECRET_FILE
    if not path.exists():
        keep_first(path, secrets.token_urlsafe(48).encode("ascii"))
    return path.read_text(encoding="ascii").strip().encode()
