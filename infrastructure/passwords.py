"""Password hashing with scrypt (stdlib), in a self-describing format so parameters can change."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# n=2**14, r=8, p=1: about 16 MiB and tens of milliseconds per hash (OWASP's scrypt minimum)
N, R, P = 2**14, 8, 1


class ScryptHasher:
    def __init__(self, n: int = N, r: int = R, p: int = P) -> None:
        self.n, self.r, self.p = n, r, p

    def hash(self, password: str) -> str:
        salt = secrets.token_bytes(16)
        digest = self._derive(password, salt, self.n, self.r, self.p)
        return f"scrypt${self.n}${self.r}${self.p}${_b64(salt)}${_b64(digest)}"

    def verify(self, password: str, encoded: str) -> bool:
        try:
            kind, n, r, p, salt, digest = encoded.split("$")
        except ValueError:
            return False
        if kind != "scrypt":
            return False
        try:  # parameters that are not numbers, n not a power of two, over the memory bound, bad
            # base64: a stored value we cannot use never matches
            actual = self._derive(password, _unb64(salt), int(n), int(r), int(p))
            return hmac.compare_digest(actual, _unb64(digest))
        except (ValueError, OverflowError, MemoryError):
            return False

    @staticmethod
    def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
        return hashlib.scrypt(
            password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32
        )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
