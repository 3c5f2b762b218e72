"""Access tokens: HS256 JWTs with issuer, audience, issue and expiry times all required."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from pathlib import Path
from typing import Any

import jwt

from application.ports import InvalidTokenError

ISSUER = "taskwarden"
AUDIENCE = "taskwarden-api"
MIN_SECRET_BYTES = 32
SECRET_FILE = "jwt_secret"  # noqa: S105 - a file name, not a secret


class JwtCodec:
    def __init__(self, secret: bytes, access_ttl: int = 900) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self.access_ttl = access_ttl

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
        data_dir.mkdir(parents=True, exist_ok=True)
        fresh = secrets.token_urlsafe(48)
        try:
            with open(path, "x", encoding="ascii") as file:  # exclusive create
                file.write(fresh)
            path.chmod(0o600)
        except FileExistsError:
            pass  # another process won the race; read its secret
    return path.read_text(encoding="ascii").strip().encode()
