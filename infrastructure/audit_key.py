"""The Ed25519 key that signs audit exports, and the public keys that check them (docs/audit.md,
"Key handling").

Ed25519 comes from the ``cryptography`` package: a well-kept implementation we must not write
ourselves. The private key is read from ``TASKWARDEN_AUDIT_KEY_FILE`` (a PEM file), else generated
once into ``<data dir>/audit_ed25519.pem`` (mode 0600), as the JWT secret is. It never enters the
event store, a log line or an answer: only the public key leaves this module, as PEM, as its 32
raw bytes in base64, and as its ``key_id`` (the first 16 hex digits of the SHA-256 of the raw key).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from infrastructure.private_files import keep_first

KEY_FILE = "audit_ed25519.pem"
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw
_PEM = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo


class AuditKeyError(Exception):
    """A key file or a given public key that is not an Ed25519 key."""


class PublicKey:
    """An Ed25519 public key: checks a head's signature (``application.audit.verify``)."""

    def __init__(self, key: Ed25519PublicKey) -> None:
        self._key = key
        self.raw = key.public_bytes(*_RAW)
        self.key_id = hashlib.sha256(self.raw).hexdigest()[:16]

    @property
    def pem(self) -> str:
        return self._key.public_bytes(*_PEM).decode("ascii")

    @property
    def base64(self) -> str:
        return base64.b64encode(self.raw).decode("ascii")

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    @classmethod
    def from_text(cls, text: str) -> PublicKey:
        """A PEM public key (``-----BEGIN PUBLIC KEY-----``) or the 32 raw bytes in base64, as
        ``GET /api/audit/key`` serves them."""
        text = text.strip()
        try:
            if text.startswith("-----BEGIN"):
                loaded = serialization.load_pem_public_key(text.encode("ascii"))
                if not isinstance(loaded, Ed25519PublicKey):
                    raise AuditKeyError("not an Ed25519 public key")
                return cls(loaded)
            return cls(Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True)))
        except (ValueError, binascii.Error, UnsupportedAlgorithm) as error:
            raise AuditKeyError(f"not an Ed25519 public key (PEM or base64): {error}") from None


class AuditKey:
    """The installation's signing key."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public = PublicKey(key.public_key())
        self.key_id = self.public.key_id

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def __repr__(self) -> str:  # never the key itself, in a log or a traceback
        return f"AuditKey(key_id={self.key_id!r})"


def key_path(configured: Path | None, data_dir: Path) -> Path:
    return configured or data_dir / KEY_FILE


def load_audit_key(configured: Path | None, data_dir: Path, *, create: bool = True) -> AuditKey:
    """``TASKWARDEN_AUDIT_KEY_FILE``, or the key generated once (mode 0600) in the data dir;
    ``create=False`` (the verifier's local key): a missing file is an error, not a new key."""
    path = key_path(configured, data_dir)
    if configured is None and create and not path.exists():
        _generate(path)
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise AuditKeyError(f"no audit key at {path}") from None
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise AuditKeyError(f"{path}: not an unencrypted PEM private key: {error}") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise AuditKeyError(f"{path} is not an Ed25519 private key")
    return AuditKey(loaded)


def _generate(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    keep_first(path, pem)  # whole and at once: the first process's key is kept, others read it
