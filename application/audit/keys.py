"""What the audit export and its verifier need of a key (implemented by
``infrastructure.audit_key`` with Ed25519): the export signs its head, the verifier checks it."""

from __future__ import annotations

from typing import Any, Protocol


class SignatureCheck(Protocol):
    """A public key: its id (the first 16 hex digits of the SHA-256 of its raw bytes) and the
    check of a signature made by its private key."""

    @property
    def key_id(self) -> str: ...

    @property
    def pem(self) -> str: ...

    @property
    def base64(self) -> str: ...

    def verify(self, signature: bytes, message: bytes) -> bool: ...


class Signer(Protocol):
    """The installation's private key: signs a head; its public half checks the signature."""

    @property
    def key_id(self) -> str: ...

    @property
    def public(self) -> SignatureCheck: ...

    def sign(self, message: bytes) -> bytes: ...


def public_key_data(key: SignatureCheck) -> dict[str, Any]:
    """``GET /api/audit/key``: what an auditor needs to check a head."""
    return {
        "algorithm": "Ed25519",
        "key_id": key.key_id,
        "public_key_pem": key.pem,
        "public_key_base64": key.base64,
    }
