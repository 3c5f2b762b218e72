"""Access tokens: HS256 JWTs with issuer, audience, issue and expiry times all required."""

from __future__ import annotations

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

    def issue(self, claims: dict[str, Any]) -> str:
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + self.access_ttl,
            "jti": secrets.token_hex(8),
            **claims,
        }
        return jwt.encode(payload, self._secret, algorithm="HS256")

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
            with open(path, "x", encoding="ascii") as file:  # noqa: PTH123 - exclusive create
                file.write(fresh)
            path.chmod(0o600)
        except FileExistsError:
            pass  # another process won the race; read its secret
    return path.read_text(encoding="ascii").strip().encode()
